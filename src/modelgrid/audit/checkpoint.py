"""Signed checkpoints, in the text formats Go's sumdb, Sigsum and the C2SP specifications use.

A checkpoint (C2SP tlog-checkpoint) is the note text::

    <origin>
    <tree size, decimal>
    <root hash, base64>

and a signed note (C2SP signed-note) is that text, a blank line, and one line per signature,
``— <key name> <base64(key hash (4 bytes) || Ed25519 signature of the text)>``. The key name is
the log's origin, so a verifier needs only the public key and that name (keys.PublicKey).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from .keys import AuditKeys, PublicKey, check_name

_DASH = "\u2014 "  # an em dash and a space begin every signature line


class InvalidCheckpoint(ValueError):
    """A note that is malformed or not signed by the expected key; the message says which."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    @property
    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def sign_note(text: str, name: str, keys: AuditKeys) -> str:
    """``text`` (ending in a newline) as a signed note, signed by ``keys`` as ``name``."""
    if not text.endswith("\n"):
        raise ValueError("a note's text ends with a newline")
    key_hash = keys.public_key(name).key_hash
    signature = base64.b64encode(key_hash + keys.sign(text.encode())).decode()
    return f"{text}\n{_DASH}{name} {signature}\n"


def open_note(note: str, key: PublicKey) -> str:
    """The text of a signed note that ``key`` signed; raises InvalidCheckpoint otherwise.
    Signatures by other keys are ignored, as signed-note says."""
    if not note.endswith("\n"):
        raise InvalidCheckpoint("a signed note ends with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise InvalidCheckpoint("no blank line between the note's text and its signatures")
    text, lines = note[: split + 1], note[split + 2 : -1].split("\n")
    signed = False
    for line in lines:
        if not line.startswith(_DASH):
            raise InvalidCheckpoint("a signature line must begin with an em dash")
        name, _, encoded = line[len(_DASH) :].rpartition(" ")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise InvalidCheckpoint("a signature is not base64") from None
        if name != key.name or blob[:4] != key.key_hash:
            continue  # another key's (a witness's, say)
        if not key.verify(blob[4:], text.encode()):
            raise InvalidCheckpoint(f"the signature of {name!r} does not verify")
        signed = True
    if not signed:
        raise InvalidCheckpoint(f"no signature by the key {key.verifier_key}")
    return text


def sign_checkpoint(checkpoint: Checkpoint, keys: AuditKeys) -> str:
    """The checkpoint as a signed note, signed as its origin."""
    return sign_note(checkpoint.text, check_name(checkpoint.origin), keys)


def open_checkpoint(note: str, key: PublicKey) -> Checkpoint:
    """The checkpoint a signed note holds, if ``key`` signed it for its own origin; raises
    InvalidCheckpoint otherwise."""
    return _parse(open_note(note, key), key.name)


def _parse(text: str, origin: str) -> Checkpoint:
    lines = text.split("\n")[:-1]  # the text ends with a newline
    if len(lines) < 3:
        raise InvalidCheckpoint("a checkpoint has an origin, a size and a root hash")
    if lines[0] != origin:
        raise InvalidCheckpoint(f"the checkpoint is for {lines[0]!r}, not {origin!r}")
    size = lines[1]
    if not (size.isascii() and size.isdigit()) or (size != "0" and size.startswith("0")):
        raise InvalidCheckpoint("a checkpoint's size is a decimal number")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except binascii.Error:
        raise InvalidCheckpoint("a checkpoint's root hash is base64") from None
    if len(root) != 32:
        raise InvalidCheckpoint("a checkpoint's root hash is 32 bytes")
    return Checkpoint(origin, int(size), root)
