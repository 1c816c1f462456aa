"""Layers' knowledge: documents ingested into passages, retrieved for a request and cited."""
