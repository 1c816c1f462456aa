"""API keys: how they look, and how they are stored (a SHA-256 hash, never the key).

A key is ``mg-`` and 43 URL-safe characters (256 random bits). Keys carry that much entropy, so a
fast hash is as safe as a slow one and keeps authentication off the CPU's hot path; the first 11
characters are the key's public prefix, shown in listings and logs.
"""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "mg-"
PUBLIC_PREFIX_LENGTH = 11


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def public_prefix(key: str) -> str:
    return key[:PUBLIC_PREFIX_LENGTH]


def parse_bearer(header: str | None) -> str | None:
    """The key in ``Authorization: Bearer <key>``, or None when the header has none."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        return None
    return value
