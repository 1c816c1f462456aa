"""The operator's audit keys: an Ed25519 key that signs checkpoints, and a 32-byte HMAC
secret that pseudonymises the leaves (record.py).

Both are made on first start in a directory the caller names (the server's data dir) and
loaded afterwards. Every replica must load the same files (share the directory, or mount them
as a secret): a replica with keys of its own would sign checkpoints no verifier accepts and give
an organisation a second pseudonym.

A file is written under a temporary name created with O_EXCL and mode 0600, so no other user can
ever read it, and then linked to its real name, which fails if it exists: replicas starting at
once agree on one key, and none reads a half-written file.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger("modelgrid.audit")

SIGNING_KEY_FILE = "audit-ed25519.pem"
HMAC_SECRET_FILE = "audit-hmac.key"
SECRET_BYTES = 32
_ED25519 = b"\x01"  # the signed-note signature type of Ed25519


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def check_name(name: str) -> str:
    """A signed-note key name: non-empty, no whitespace and no "+"."""
    if not name or "+" in name or any(c.isspace() for c in name):
        raise ValueError(f"{name!r} cannot name a key: it must be non-empty, no spaces or '+'")
    return name


@dataclass(frozen=True, slots=True)
class PublicKey:
    """What verifies the log's checkpoints: the raw Ed25519 key and the name it signs as (the
    log's origin), which the signed-note key hash covers."""

    name: str
    raw: bytes

    def __post_init__(self) -> None:
        check_name(self.name)
        if len(self.raw) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")

    @property
    def key_hash(self) -> bytes:
        """The signed-note key id: SHA-256(name || "\\n" || 0x01 || key), first 4 bytes."""
        return hashlib.sha256(self.name.encode() + b"\n" + _ED25519 + self.raw).digest()[:4]

    @property
    def verifier_key(self) -> str:
        """The note verifier key, ``name+hash+base64(0x01 || key)``, as Go's sumdb reads it."""
        return f"{self.name}+{self.key_hash.hex()}+{_b64(_ED25519 + self.raw)}"

    @property
    def pem(self) -> str:
        key = Ed25519PublicKey.from_public_bytes(self.raw)
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "algorithm": "Ed25519",
            "name": self.name,
            "public_key": _b64(self.raw),
            "pem": self.pem,
            "verifier_key": self.verifier_key,
        }

    @classmethod
    def from_verifier_key(cls, text: str) -> PublicKey:
        try:
            name, key_hash, encoded = text.split("+", 2)  # base64 may hold a "+"
            raw = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise ValueError("not a note verifier key (name+hash+base64)") from None
        if raw[:1] != _ED25519:
            raise ValueError("not an Ed25519 note verifier key")
        key = cls(name, raw[1:])
        if key.key_hash.hex() != key_hash:
            raise ValueError("the verifier key's hash does not match its name and key")
        return key


class AuditKeys:
    """The private half: signs, and pseudonymises. Its repr shows neither secret."""

    def __init__(self, signing_key: Ed25519PrivateKey, hmac_secret: bytes) -> None:
        if len(hmac_secret) != SECRET_BYTES:
            raise ValueError(f"the audit HMAC secret must be {SECRET_BYTES} bytes")
        self._signing_key = signing_key
        self.hmac_secret = hmac_secret
        self.public_raw = signing_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def __repr__(self) -> str:
        return f"AuditKeys(public={_b64(self.public_raw)})"

    @classmethod
    def generate(cls) -> AuditKeys:
        """Fresh keys in memory only (tests, benchmarks)."""
        return cls(Ed25519PrivateKey.generate(), os.urandom(SECRET_BYTES))

    @classmethod
    def load(cls, directory: Path) -> AuditKeys:
        """The keys in ``directory``; FileNotFoundError if they were never made there."""
        directory = Path(directory)
        pem = _read(directory / SIGNING_KEY_FILE)
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            raise ValueError(f"{directory / SIGNING_KEY_FILE} is not a PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{directory / SIGNING_KEY_FILE} is not an Ed25519 key")
        secret = _read(directory / HMAC_SECRET_FILE)
        if len(secret) != SECRET_BYTES:
            raise ValueError(f"{directory / HMAC_SECRET_FILE} is not {SECRET_BYTES} bytes")
        return cls(key, secret)

    @classmethod
    def load_or_create(cls, directory: Path) -> AuditKeys:
        """The keys in ``directory``, made there first if missing."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if not (directory / SIGNING_KEY_FILE).exists():
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _create(directory / SIGNING_KEY_FILE, pem)
        if not (directory / HMAC_SECRET_FILE).exists():
            _create(directory / HMAC_SECRET_FILE, os.urandom(SECRET_BYTES))
        return cls.load(directory)

    def public_key(self, name: str) -> PublicKey:
        return PublicKey(name, self.public_raw)

    def sign(self, message: bytes) -> bytes:
        return self._signing_key.sign(message)


def _create(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with open(fd, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return  # another process made it first: theirs is the key
        log.info("audit: created %s", path)
    finally:
        temporary.unlink(missing_ok=True)


def _read(path: Path) -> bytes:
    with open(path, "rb") as file:
        if stat.S_IMODE(os.fstat(file.fileno()).st_mode) & 0o077:
            log.warning("audit: %s is readable by other users; make it mode 0600", path)
        return file.read()
