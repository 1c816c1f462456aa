"""Large-small collaboration: which model answers, and what that choice is worth."""
