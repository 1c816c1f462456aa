"""The operator's secret watermark key: 32 random bytes in a file of the data directory."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

KEY_FILE = "watermark.key"
KEY_BYTES = 32


def parse_key(text: str) -> bytes:
    """A key given in the settings, as 64 hexadecimal digits."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise ValueError("a watermark key is 64 hexadecimal digits") from None
    if len(key) != KEY_BYTES:
        raise ValueError("a watermark key is 64 hexadecimal digits")
    return key


def read_key(path: Path) -> bytes:
    """The key in ``path``; FileNotFoundError if there is none, ValueError if it is damaged."""
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise ValueError(f"{path} holds {len(key)} bytes, not a {KEY_BYTES}-byte watermark key")
    return key


def load_or_create_key(data_dir: Path) -> bytes:
    """The key in ``data_dir/watermark.key``, made (mode 0600) on first use.

    A new key is written to a file of its own, then linked into place: the link fails if
    another process got there first, whose key is then used, and nobody reads a half-written
    file."""
    path = data_dir / KEY_FILE
    try:
        return read_key(path)
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    draft = data_dir / f".{KEY_FILE}.{secrets.token_hex(8)}"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(key)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(draft, path)
        except FileExistsError:
            return read_key(path)
    finally:
        draft.unlink(missing_ok=True)
    return key


def operator_key(data_dir: Path, configured: str | None = None) -> bytes:
    """The key from the settings (hexadecimal) if there is one, else the data directory's."""
    if configured:
        return parse_key(configured)
    return load_or_create_key(data_dir)
