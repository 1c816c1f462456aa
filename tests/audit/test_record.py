"""Leaf records: canonical bytes, pseudonyms and digests, review verdicts."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from modelgrid.audit.record import (
    ACTIONS,
    AuditRecord,
    build_record,
    from_review,
    prompt_text,
    pseudonym,
    text_hmac,
)
from modelgrid.review.verdict import Action, Policy, decide

SECRET = bytes(range(32))
T0 = datetime(2026, 12, 1, 9, 30, 0, 250_000, tzinfo=UTC)


def record(content_id: str = "chatcmpl-abc123", **changes: object) -> AuditRecord:
    fields: dict[str, object] = {
        "content_id": content_id,
        "time": T0,
        "org_id": "org_42",
        "key_id": "key_7",
        "model": "smollm2-135m-instruct",
        "prompt": prompt_text([{"role": "user", "content": "你好"}]),
        "response": "Hello! 你好",
        "layers": ["review", "label"],
        "review": [
            {"stage": "input", "action": "allow", "risks": []},
            {"stage": "output", "action": "mask", "risks": ["pii:phone"]},
        ],
        "aigc": {"Label": "1", "ContentProducer": "P" * 27, "ProduceID": content_id},
    }
    fields.update(changes)
    return build_record(SECRET, **fields)  # type: ignore[arg-type]


def test_canonical_bytes_are_sorted_compact_json_and_round_trip() -> None:
    made = record()
    raw = made.to_bytes()
    data = orjson.loads(raw)
    assert raw == orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    assert list(data) == sorted(data)
    assert data["time"] == "2026-12-01T09:30:00.250000Z"
    assert data["v"] == 1
    assert AuditRecord.from_bytes(raw) == made
    assert AuditRecord.from_bytes(raw).to_bytes() == raw
    # Key order of the caller's dicts does not matter; the same record hashes the same.
    shuffled = record(
        aigc={"ProduceID": "chatcmpl-abc123", "ContentProducer": "P" * 27, "Label": "1"}
    )
    assert shuffled.to_bytes() == raw


def test_the_time_is_kept_in_utc_whatever_zone_it_came_in() -> None:
    east = T0.astimezone(timezone(timedelta(hours=8)))
    assert record(time=east).to_bytes() == record().to_bytes()
    with pytest.raises(ValueError):
        record(time=datetime(2026, 12, 1))


def test_content_ids_the_database_would_refuse_are_refused_at_once() -> None:
    for bad in ("", "x" * 161):
        with pytest.raises(ValueError):
            record(bad)
    assert record("x" * 160).content_id == "x" * 160


def test_no_raw_id_or_text_goes_into_the_leaf() -> None:
    raw = record().to_bytes()
    for secret_thing in (b"org_42", b"key_7", "你好".encode(), b"Hello"):
        assert secret_thing not in raw
    data = orjson.loads(raw)
    expected = hmac.new(SECRET, b"org:org_42", hashlib.sha256).hexdigest()[:32]
    assert data["org"] == expected == pseudonym(SECRET, "org", "org_42")
    assert data["key"] == pseudonym(SECRET, "key", "key_7") != pseudonym(SECRET, "org", "key_7")
    assert data["response_hmac"] == hmac.new(SECRET, "Hello! 你好".encode(), "sha256").hexdigest()
    assert data["prompt_hmac"] == text_hmac(SECRET, '[{"content":"你好","role":"user"}]')
    # Another operator's secret gives other pseudonyms.
    assert pseudonym(b"\x01" * 32, "org", "org_42") != data["org"]
    assert record(org_id=None, key_id=None).org is None


def test_layers_may_be_empty_and_verdicts_are_checked() -> None:
    assert orjson.loads(record(layers=[], review=[]).to_bytes())["layers"] == []
    for bad in (
        {"stage": "middle", "action": "allow", "risks": []},
        {"stage": "input", "action": "shrug", "risks": []},
        {"stage": "input", "action": "allow", "risks": "A.1.1"},
    ):
        with pytest.raises(ValueError):
            record(review=[bad])


def test_the_review_engines_verdicts_convert() -> None:
    assert [ACTIONS[a] for a in Action] == [a.name.lower() for a in Action]
    assert from_review("input", decide([], [], Policy())) == {
        "stage": "input",
        "action": "allow",
        "risks": [],
    }


def test_bytes_that_are_not_a_record_are_refused() -> None:
    for raw in (b"{}", b'{"v": 2}', b"[1]", b"not json"):
        with pytest.raises((ValueError, KeyError, TypeError)):
            AuditRecord.from_bytes(raw)


@pytest.mark.parametrize("secret", [b"", b"k", b"s" * 32, b"b" * 64, b"l" * 131])
def test_text_hmac_is_rfc_2104_hmac_sha256(secret: bytes) -> None:
    for text in ("", "Hello", "本内容由人工智能生成" * 50):
        assert text_hmac(secret, text) == hmac.digest(secret, text.encode(), "sha256").hex()


def test_text_hmac_matches_rfc_4231_case_2() -> None:
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert text_hmac(b"Jefe", "what do ya want for nothing?") == expected
