"""The audit log's leaf: what one response was, as canonical bytes that always hash the same.

No raw text or id goes in. Organisation and key are HMAC-SHA256 pseudonyms (truncated to 128
bits), prompt and response HMAC-SHA256 digests of their UTF-8 text, all under the operator's
secret (keys.py): whoever holds the secret can confirm that a given text or id is the one
logged, anyone else sees only stable pseudonyms that cannot be reversed or guessed from ids.

Canonical bytes are orjson with sorted keys and the time as UTC with microseconds, so one record
has one encoding, and the journal line, the stored leaf and the hashed leaf are the same bytes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal, TypedDict

import orjson

from ..review.verdict import Verdict

VERSION = 1
PSEUDONYM_BYTES = 16
MAX_CONTENT_ID = 160  # audit_leaves.content_id's length

Stage = Literal["input", "output"]
ActionName = Literal["allow", "mask", "refuse", "flag"]
STAGES: tuple[Stage, ...] = ("input", "output")
ACTIONS: tuple[ActionName, ...] = ("allow", "flag", "mask", "refuse")  # Action's order


class ReviewVerdict(TypedDict):
    stage: Stage
    action: ActionName
    risks: list[str]  # TC260-003 risk codes ("A.1.1"), and "pii:<kind>" for personal data


@dataclass(frozen=True, slots=True)
class AuditRecord:
    content_id: str  # the completion's id, the AIGC metadata's ProduceID
    time: datetime
    org: str | None  # pseudonyms, never the ids themselves
    key: str | None
    model: str
    layers: tuple[str, ...] = ()
    prompt_hmac: str = ""
    response_hmac: str = ""
    review: tuple[ReviewVerdict, ...] = ()
    aigc: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Checked here, on the request path: a record the database refuses would hold up every
        # record behind it in the same batch.
        if not 0 < len(self.content_id) <= MAX_CONTENT_ID:
            raise ValueError(f"a content id has 1 to {MAX_CONTENT_ID} characters")
        if self.time.tzinfo is None:
            raise ValueError("an audit record's time must be timezone-aware")
        object.__setattr__(self, "time", self.time.astimezone(UTC))
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "review", tuple(self.review))

    def to_json(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "content_id": self.content_id,
            # The same text as strftime("%Y-%m-%dT%H:%M:%S.%fZ") (time is in UTC), at half
            # the cost.
            "time": self.time.isoformat(timespec="microseconds")[:-6] + "Z",
            "org": self.org,
            "key": self.key,
            "model": self.model,
            "layers": list(self.layers),
            "prompt_hmac": self.prompt_hmac,
            "response_hmac": self.response_hmac,
            "review": [dict(v) for v in self.review],
            "aigc": dict(self.aigc),
        }

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_json(), option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_bytes(cls, raw: bytes) -> AuditRecord:
        """Raises ValueError (or KeyError, TypeError) on anything but a record's bytes."""
        data = orjson.loads(raw)
        if not isinstance(data, dict) or data.get("v") != VERSION:
            raise ValueError("not an audit record of version 1")
        return cls(
            content_id=data["content_id"],
            time=datetime.fromisoformat(data["time"]),
            org=data["org"],
            key=data["key"],
            model=data["model"],
            layers=tuple(data["layers"]),
            prompt_hmac=data["prompt_hmac"],
            response_hmac=data["response_hmac"],
            review=tuple(_verdict(v) for v in data["review"]),
            aigc=data["aigc"],
        )


def pseudonym(secret: bytes, kind: str, value: str | None) -> str | None:
    """``kind`` ("org", "key") keeps an organisation and a key with equal ids apart."""
    if value is None:
        return None
    return _pseudonym(secret, kind, value)


# Every request names its organisation and key, and a server sees few of them: each
# pseudonym is computed once.
@lru_cache(maxsize=65536)
def _pseudonym(secret: bytes, kind: str, value: str) -> str:
    return hmac.digest(secret, f"{kind}:{value}".encode(), "sha256")[:PSEUDONYM_BYTES].hex()


def text_hmac(secret: bytes, text: str) -> str:
    """HMAC-SHA256 (RFC 2104) from the secret's keyed inner and outer states, made once: a
    copy of each a message, not OpenSSL's digest lookup and key schedule (0.8 µs against
    2.1 for ``hmac.digest``)."""
    inner, outer = _keyed(secret)
    digest = inner.copy()
    digest.update(text.encode())
    wrapped = outer.copy()
    wrapped.update(digest.digest())
    return wrapped.hexdigest()


@lru_cache(maxsize=8)
def _keyed(secret: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    block = hashlib.sha256().block_size
    key = hashlib.sha256(secret).digest() if len(secret) > block else secret
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer


def prompt_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """One canonical text for a chat prompt: its messages as JSON with sorted keys."""
    return orjson.dumps(list(messages), option=orjson.OPT_SORT_KEYS).decode()


def from_review(stage: Stage, verdict: Verdict) -> ReviewVerdict:
    """The review engine's verdict as the log keeps it: its action and what it was for."""
    risks = sorted({reason.source for reason in verdict.reasons})
    return {"stage": stage, "action": ACTIONS[verdict.action], "risks": risks}


def build_record(
    secret: bytes,
    *,
    content_id: str,
    time: datetime,
    org_id: str | None,
    key_id: str | None,
    model: str,
    prompt: str,
    response: str,
    layers: Iterable[str] = (),
    review: Iterable[ReviewVerdict] = (),
    aigc: Mapping[str, str] | None = None,
) -> AuditRecord:
    """A leaf for one response: ids pseudonymised and texts digested under ``secret``."""
    return AuditRecord(
        content_id=content_id,
        time=time,
        org=pseudonym(secret, "org", org_id),
        key=pseudonym(secret, "key", key_id),
        model=model,
        layers=tuple(layers),
        prompt_hmac=text_hmac(secret, prompt),
        response_hmac=text_hmac(secret, response),
        review=tuple(_verdict(v) for v in review),
        aigc=dict(aigc or {}),
    )


def _verdict(value: Mapping[str, Any]) -> ReviewVerdict:
    stage, action, risks = value["stage"], value["action"], value["risks"]
    if stage not in STAGES or action not in ACTIONS:
        raise ValueError(f"not a review verdict: stage {stage!r}, action {action!r}")
    if not isinstance(risks, list | tuple) or not all(isinstance(r, str) for r in risks):
        raise ValueError("a review verdict's risks must be a list of codes")
    return {"stage": stage, "action": action, "risks": list(risks)}
