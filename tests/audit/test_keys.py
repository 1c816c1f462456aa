"""The operator's audit keys: made once, private from the start, loaded after."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelgrid.audit.keys import (
    HMAC_SECRET_FILE,
    SIGNING_KEY_FILE,
    AuditKeys,
    PublicKey,
)


def test_keys_are_made_once_with_mode_0600_and_loaded_after(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    made = AuditKeys.load_or_create(data_dir)
    for name in (SIGNING_KEY_FILE, HMAC_SECRET_FILE):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600
    assert sorted(os.listdir(data_dir)) == sorted([SIGNING_KEY_FILE, HMAC_SECRET_FILE])
    again = AuditKeys.load_or_create(data_dir)
    assert again.public_raw == made.public_raw
    assert again.hmac_secret == made.hmac_secret
    assert AuditKeys.load(data_dir).public_raw == made.public_raw
    assert len(made.hmac_secret) == 32
    message = b"checkpoint"
    assert made.public_key("log").verify(again.sign(message), message)


def test_files_are_never_created_readable_by_others(tmp_path: Path) -> None:
    old = os.umask(0)  # the most permissive umask: the mode alone must keep them private
    try:
        AuditKeys.load_or_create(tmp_path)
    finally:
        os.umask(old)
    for name in (SIGNING_KEY_FILE, HMAC_SECRET_FILE):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_an_existing_key_is_never_replaced(tmp_path: Path) -> None:
    first = AuditKeys.load_or_create(tmp_path)
    (tmp_path / HMAC_SECRET_FILE).unlink()
    second = AuditKeys.load_or_create(tmp_path)
    assert second.public_raw == first.public_raw  # the signing key stayed
    assert second.hmac_secret != first.hmac_secret  # only the missing file was made


def test_missing_or_broken_keys_fail_without_showing_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(FileNotFoundError):
        AuditKeys.load(tmp_path)
    keys = AuditKeys.load_or_create(tmp_path)
    secret = (tmp_path / HMAC_SECRET_FILE).read_bytes()
    (tmp_path / HMAC_SECRET_FILE).write_bytes(secret + b"x")
    with pytest.raises(ValueError) as info:
        AuditKeys.load(tmp_path)
    assert secret.hex() not in str(info.value) and repr(secret) not in str(info.value)
    (tmp_path / SIGNING_KEY_FILE).write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n")
    with pytest.raises(ValueError, match=SIGNING_KEY_FILE):
        AuditKeys.load(tmp_path)
    assert secret.hex() not in repr(keys) and "hmac" not in repr(keys).lower()
    os.chmod(tmp_path / HMAC_SECRET_FILE, 0o644)
    (tmp_path / HMAC_SECRET_FILE).write_bytes(secret)
    (tmp_path / SIGNING_KEY_FILE).unlink()
    with caplog.at_level(logging.WARNING, logger="modelgrid.audit"):
        AuditKeys.load_or_create(tmp_path)
    assert any("readable by other users" in r.getMessage() for r in caplog.records)


def test_the_public_key_in_every_shape_an_endpoint_returns() -> None:
    keys = AuditKeys.generate()
    public = keys.public_key("example.com/audit")
    shown = public.to_json()
    assert base64.b64decode(shown["public_key"]) == keys.public_raw
    loaded = serialization.load_pem_public_key(shown["pem"].encode())
    assert isinstance(loaded, Ed25519PublicKey)
    raw = loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert raw == keys.public_raw
    # signed-note's key hash: SHA-256(name || "\n" || 0x01 || key), first four bytes.
    expected = hashlib.sha256(b"example.com/audit\n\x01" + keys.public_raw).digest()[:4]
    name, key_hash, encoded = shown["verifier_key"].split("+", 2)
    assert (name, key_hash) == ("example.com/audit", expected.hex())
    assert base64.b64decode(encoded) == b"\x01" + keys.public_raw
    assert PublicKey.from_verifier_key(shown["verifier_key"]) == public


def test_go_sumdb_verifier_keys_are_read_and_bad_ones_refused() -> None:
    text = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    key = PublicKey.from_verifier_key(text)
    assert key.name == "PeterNeumann" and key.verifier_key == text
    for bad in (
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+AhpcAAAAPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ):
        with pytest.raises(ValueError):
            PublicKey.from_verifier_key(bad)
    with pytest.raises(ValueError):
        PublicKey("a+b", b"\x00" * 32)
    # transparency-dev/formats' key whose base64 holds a "+".
    plus = PublicKey.from_verifier_key("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6")
    assert plus.name == "TEST"
