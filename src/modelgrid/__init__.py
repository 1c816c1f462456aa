"""ModelGrid."""
