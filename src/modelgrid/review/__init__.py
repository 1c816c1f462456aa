"""Safety review core: taxonomy, normaliser, term matcher, PII detectors and verdicts."""
