"""Provenance: which of ModelGrid's stored outputs a piece of text came from.

For any model, closed upstream ones included (the watermark needs the logits; this does not):
MinHash signatures over shingles, banded for locality-sensitive hashing, so that a lookup reads
only the stored outputs that share a band with the text, never the whole table.
"""
