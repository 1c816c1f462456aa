"""The human review queue: what the safety review flagged, waiting for a person's decision.

Adding an item is off the request path and durable, as a ledger entry is (storage/journal.py:
a line copied into this process's journal, committed in batches, replayed after a crash;
items carry their id from the start, so a replay never adds one twice). A decision is one
update that only a pending item matches: of two reviewers deciding at once, exactly one
succeeds and the other learns the item was already decided. Every decision is handed to
``on_decision`` once committed (the audit log's append, wired by the app).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .database import Database
from .journal import Journal
from .journaled import Journaled
from .tables import review_items

log = logging.getLogger("modelgrid.review_queue")

Stage = Literal["input", "output"]
Status = Literal["pending", "approved", "rejected"]
Decision = Literal["approve", "reject"]
STATUSES: tuple[Status, ...] = ("pending", "approved", "rejected")
DECISIONS: dict[Decision, Status] = {"approve": "approved", "reject": "rejected"}
EXCERPT_CHARS = 2000
MAX_LIST = 1000
_ELLIPSIS = "…"

_COLUMNS = (
    "id",
    "content_id",
    "created_at",
    "org_id",
    "key_id",
    "model",
    "stage",
    "reasons",
    "excerpt",
    "status",
    "decided_by",
    "decided_by_prefix",
    "decided_at",
    "note",
)


@dataclass(frozen=True, slots=True)
class ReviewItem:
    id: str
    content_id: str
    created_at: datetime
    org_id: str | None
    key_id: str | None
    model: str
    stage: Stage
    reasons: tuple[dict[str, str], ...]  # {"action", "source", "detail"}, as the review gave
    excerpt: str  # the flagged text, up to EXCERPT_CHARS around what was flagged
    status: Status = "pending"
    decided_by: str | None = None  # the deciding key's id
    decided_by_prefix: str | None = None  # and its public prefix
    decided_at: datetime | None = None
    note: str = ""

    def to_json(self) -> bytes:
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, raw: bytes) -> ReviewItem:
        data = orjson.loads(raw)
        data["created_at"] = datetime.fromisoformat(data["created_at"])
        if data["decided_at"] is not None:
            data["decided_at"] = datetime.fromisoformat(data["decided_at"])
        data["reasons"] = tuple(data["reasons"])
        return cls(**data)


class UnknownItem(LookupError):
    pass


class AlreadyDecided(Exception):
    def __init__(self, item: ReviewItem) -> None:
        super().__init__(f"review item {item.id} is already {item.status}")
        self.item = item


def excerpt(text: str, around: int | None = None, limit: int = EXCERPT_CHARS) -> str:
    """At most ``limit`` characters of ``text`` (an ellipsis marks each cut): its start, or a
    window centred on offset ``around`` (where the review found something), so a reviewer
    sees what was flagged in a long text."""
    if len(text) <= limit:
        return text
    start = 0 if around is None else min(max(0, around - limit // 2), len(text) - limit)
    head = _ELLIPSIS if start > 0 else ""
    tail = _ELLIPSIS if start + limit < len(text) else ""
    body = text[start + len(head) : start + limit - len(tail)]
    return f"{head}{body}{tail}"


def new_item(
    content_id: str,
    org_id: str | None,
    key_id: str | None,
    model: str,
    stage: Stage,
    reasons: Iterable[Mapping[str, Any]],
    text: str,
    around: int | None = None,
    now: datetime | None = None,
) -> ReviewItem:
    """A pending item for ``text``, flagged at ``stage`` for ``reasons``."""
    return ReviewItem(
        id=f"rev_{secrets.token_hex(12)}",
        content_id=content_id,
        created_at=now or datetime.now(UTC),
        org_id=org_id,
        key_id=key_id,
        model=model,
        stage=stage,
        reasons=tuple({str(k): str(v) for k, v in reason.items()} for reason in reasons),
        excerpt=excerpt(text, around),
    )


class ReviewQueue(Journaled[ReviewItem]):
    def __init__(
        self,
        db: Database,
        journal_dir: Path,
        flush_interval: float = 1.0,
        on_decision: Callable[[ReviewItem], None] | None = None,
    ) -> None:
        self._db = db
        # Called with each decided item once its decision is committed; an exception it
        # raises reaches the caller (the decision itself stands).
        self.on_decision = on_decision
        self._journal: Journal[ReviewItem] = Journal(
            journal_dir,
            encode=ReviewItem.to_json,
            decode=ReviewItem.from_json,
            commit=self._insert,
            describe=lambda item: f"review item {item.id}",
            log=log,
            name="review-queue",
            flush_interval=flush_interval,
            prefix="review",
        )

    # Reads and decisions flush this process's appended items first, so they are found.

    async def list_items(self, status: Status | None = None, limit: int = 100) -> list[ReviewItem]:
        """Newest first."""
        await self.flush()
        c = review_items.c
        query = _SELECT.order_by(c.created_at.desc(), c.id.desc()).limit(min(limit, MAX_LIST))
        if status is not None:
            query = query.where(c.status == status)
        async with self._db.engine.connect() as conn:
            return [_item(row) for row in await conn.execute(query)]

    async def get(self, item_id: str) -> ReviewItem | None:
        await self.flush()
        async with self._db.engine.connect() as conn:
            return await _get(conn, item_id)

    async def decide(
        self,
        item_id: str,
        decision: Decision,
        decided_by: str,
        decided_by_prefix: str | None = None,
        note: str = "",
    ) -> ReviewItem:
        """Approve or reject a pending item; UnknownItem or AlreadyDecided otherwise."""
        await self.flush()
        c, now = review_items.c, datetime.now(UTC)
        update = (
            review_items.update()
            .where(c.id == item_id, c.status == "pending")
            .values(
                status=DECISIONS[decision],
                decided_by=decided_by,
                decided_by_prefix=decided_by_prefix,
                decided_at=now,
                note=note,
            )
        )
        async with self._db.begin_write() as conn:
            changed = (await conn.execute(update)).rowcount
            item = await _get(conn, item_id)
        if item is None:
            raise UnknownItem(item_id)
        if changed != 1:
            raise AlreadyDecided(item)
        if self.on_decision is not None:
            self.on_decision(item)
        return item

    async def _insert(self, batch: list[ReviewItem]) -> None:
        rows = [_row(item) for item in batch]
        async with self._db.begin_write() as conn:
            await self._db.insert_new(conn, review_items, _COLUMNS, rows, unique="id")


_SELECT = sa.select(*(review_items.c[name] for name in _COLUMNS))


async def _get(conn: AsyncConnection, item_id: str) -> ReviewItem | None:
    row = (await conn.execute(_SELECT.where(review_items.c.id == item_id))).first()
    return None if row is None else _item(row)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _row(item: ReviewItem) -> tuple[Any, ...]:
    return (
        item.id,
        item.content_id,
        _utc(item.created_at),
        item.org_id,
        item.key_id,
        item.model,
        item.stage,
        orjson.dumps(item.reasons).decode(),
        item.excerpt,
        item.status,
        item.decided_by,
        item.decided_by_prefix,
        None if item.decided_at is None else _utc(item.decided_at),
        item.note,
    )


def _item(row: sa.Row[Any]) -> ReviewItem:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["created_at"] = _utc(row.created_at)
    values["decided_at"] = None if row.decided_at is None else _utc(row.decided_at)
    values["reasons"] = tuple(orjson.loads(row.reasons))
    return ReviewItem(**values)
