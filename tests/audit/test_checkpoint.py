"""Signed checkpoints: the C2SP formats byte for byte, round trips, and forgeries refused."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelgrid.audit.checkpoint import (
    Checkpoint,
    InvalidCheckpoint,
    open_checkpoint,
    open_note,
    sign_checkpoint,
    sign_note,
)
from modelgrid.audit.keys import AuditKeys, PublicKey
from modelgrid.audit.merkle import leaf_hash

# golang.org/x/mod/sumdb/note's own example: its signer key, verifier key and signed note.
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ORIGIN = "example.com/audit"
ROOT = leaf_hash(b"root")


def go_keys() -> AuditKeys:
    seed = base64.b64decode(GO_SIGNER.split("+", 4)[4])[1:]  # after the 0x01 type byte
    return AuditKeys(Ed25519PrivateKey.from_private_bytes(seed), b"\x00" * 32)


def test_notes_match_go_sumdb_byte_for_byte() -> None:
    keys = go_keys()
    assert keys.public_key("PeterNeumann").verifier_key == GO_VERIFIER
    assert sign_note(GO_TEXT, "PeterNeumann", keys) == GO_NOTE  # Ed25519 is deterministic
    assert open_note(GO_NOTE, PublicKey.from_verifier_key(GO_VERIFIER)) == GO_TEXT


def test_a_checkpoint_round_trips_in_the_tlog_checkpoint_format() -> None:
    keys = AuditKeys.generate()
    note = sign_checkpoint(Checkpoint(ORIGIN, 1234, ROOT), keys)
    text, signatures = note.split("\n\n")
    assert text.split("\n") == [ORIGIN, "1234", base64.b64encode(ROOT).decode()]
    assert signatures.startswith(f"— {ORIGIN} ") and signatures.endswith("\n")
    assert open_checkpoint(note, keys.public_key(ORIGIN)) == Checkpoint(ORIGIN, 1234, ROOT)


def test_other_keys_signatures_are_ignored_but_one_of_ours_is_needed() -> None:
    ours, witness = AuditKeys.generate(), AuditKeys.generate()
    note = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), ours)
    cosigned = note + sign_note("x\n", "witness.example", witness).split("\n\n")[1]
    assert open_checkpoint(cosigned, ours.public_key(ORIGIN)).size == 7
    with pytest.raises(InvalidCheckpoint, match="no signature"):
        open_checkpoint(note, witness.public_key(ORIGIN))


@pytest.mark.parametrize(
    "forge",
    [
        lambda note: note.replace("\n7\n", "\n8\n"),  # another size
        lambda note: note.replace(
            base64.b64encode(ROOT).decode(), base64.b64encode(b"\x00" * 32).decode()
        ),
        lambda note: note.replace(ORIGIN, "evil.example/audit"),  # another log's
        lambda note: note[:-10] + "AAAAAAAAA\n",  # a broken signature
        lambda note: note.replace("\n\n", "\n"),  # no signature block
        lambda note: note.rstrip("\n"),
        lambda note: note.replace("—", "-"),
    ],
)
def test_forged_or_malformed_checkpoints_are_refused(forge: Callable[[str], str]) -> None:
    keys = AuditKeys.generate()
    note = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), keys)
    with pytest.raises(InvalidCheckpoint):
        open_checkpoint(forge(note), keys.public_key(ORIGIN))


def test_a_checkpoint_signed_by_another_key_is_refused() -> None:
    forger = AuditKeys.generate()
    note = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), forger)
    with pytest.raises(InvalidCheckpoint):
        open_checkpoint(note, AuditKeys.generate().public_key(ORIGIN))


def test_the_body_must_be_a_checkpoint() -> None:
    keys = AuditKeys.generate()
    key = keys.public_key(ORIGIN)
    for text in (f"{ORIGIN}\n", f"{ORIGIN}\n07\nAAAA\n", f"{ORIGIN}\n7\nAAAA\n", f"{ORIGIN}\n-1\n"):
        with pytest.raises(InvalidCheckpoint):
            open_checkpoint(sign_note(text, ORIGIN, keys), key)
    with pytest.raises(ValueError):
        sign_checkpoint(Checkpoint("has space", 1, ROOT), keys)
