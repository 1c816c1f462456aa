"""The signed, tamper-evident audit log: an append-only Merkle tree (RFC 9162) of one record
per response, with Ed25519-signed checkpoints and inclusion and consistency proofs."""
