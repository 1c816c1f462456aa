"""The ledger: one entry per finished request, written to the database in batches.

The request path only calls ``append``, which journals the entry (storage/journal.py: a line
copied into this process's segment, which survives the process being killed) and keeps it
pending; a background task commits pending entries in one transaction every ``flush_interval``
seconds. The next ``start()`` in the same ``journal_dir`` replays segments dead processes left.
Inserts ignore a ``request_id`` already present, so replaying a segment that was partly or wholly
committed never counts a request twice: for a given request_id the first entry committed wins.

Money is in integer micro-credits (1 credit = 1,000,000).
"""

from __future__ import annotations

import logging
import operator
from collections.abc import AsyncIterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from .database import Database
from .journal import Forward, Journal
from .journaled import Journaled
from .tables import credit_grants, ledger
from .usage import Totals as Totals
from .usage import usage_since, usage_sums

log = logging.getLogger("modelgrid.ledger")


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    request_id: str
    account: str  # "org:<org_id>" or "key:<key_id>": whose quotas and credits it counts against
    org_id: str | None
    key_id: str | None
    model: str
    deployment: str | None
    plan: str
    tokens_in: int
    tokens_cached: int
    tokens_out: int
    list_price: int  # what the request costs at list prices, before any discount
    charge: int  # what the account was charged
    cost: int  # what the request cost the operator
    outcome: str  # ok, cancelled, or an error code
    status: int
    started_at: datetime
    created_at: datetime
    # An ``auto`` model's name when one chose the model (route, cascade, draft or shadow),
    # and what the request would have listed at on that auto's large model: the margin
    # report's saving against always calling it.
    route: str = ""
    baseline: int = 0

    def to_json(self) -> bytes:
        # orjson writes datetimes as RFC 3339 with microseconds and offset: fromisoformat's input.
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, raw: bytes) -> LedgerEntry:
        data = orjson.loads(raw)
        data["started_at"] = datetime.fromisoformat(data["started_at"])
        data["created_at"] = datetime.fromisoformat(data["created_at"])
        return cls(**data)


_COLUMNS = tuple(f.name for f in fields(LedgerEntry))
_values = operator.attrgetter(*_COLUMNS)
_STARTED, _CREATED = _COLUMNS.index("started_at"), _COLUMNS.index("created_at")
assert _CREATED == _STARTED + 1


class Ledger(Journaled[LedgerEntry]):
    def __init__(
        self,
        db: Database,
        journal_dir: Path,
        flush_interval: float = 0.05,
        batch_max: int = 1000,
        forward: Forward | None = None,  # journal.py: commit in another process
        max_backlog: int = 0,  # journal.py: bytes held uncommitted before full
    ) -> None:
        self._db = db
        self._batch_max = batch_max
        self._journal: Journal[LedgerEntry] = Journal(
            journal_dir,
            encode=LedgerEntry.to_json,
            decode=LedgerEntry.from_json,
            commit=self._insert,
            describe=lambda entry: f"request {entry.request_id}",
            log=log,
            name="ledger",
            flush_interval=flush_interval,
            forward=forward,
            max_backlog=max_backlog,
        )

    @property
    def db(self) -> Database:
        return self._db

    async def _insert(self, batch: list[LedgerEntry]) -> None:
        # Rows made a few hundred at a time, each lot's statement awaited before the next:
        # a whole second's entries converted in one go held the event loop for milliseconds.
        per = min(self._batch_max, _ROWS_A_LOT)
        async with self._db.begin_write() as conn:
            for start in range(0, len(batch), per):
                chunk = [_row(entry) for entry in batch[start : start + per]]
                await self._db.insert_new(conn, ledger, _COLUMNS, chunk, unique="request_id")

    # Queries see committed entries only: flush() first to include the pending ones. Sums
    # read the hourly roll-ups where they cover raw entries, so they outlive retention (see
    # storage/usage.py); entries themselves are gone once pruned.

    async def by_model(self, since: datetime, until: datetime) -> dict[str, Totals]:
        """Every account's entries in [since, until), summed per model."""
        found = await usage_sums(self._db, None, since, until, by=("model",))
        return {key[0]: totals for key, totals in found.items()}

    async def by_route(self, since: datetime, until: datetime) -> dict[str, Totals]:
        """Every account's entries in [since, until), summed per route ("": no auto)."""
        found = await usage_sums(self._db, None, since, until, by=("route",))
        return {key[0]: totals for key, totals in found.items()}

    async def totals(self, account: str, since: datetime) -> Totals:
        return (await usage_sums(self._db, account, since))[()]

    async def totals_since(self, account: str, windows: list[datetime | None]) -> list[Totals]:
        """``account``'s totals since each of ``windows`` (None: of all time), in one query."""
        return await usage_since(self._db, account, windows)

    async def entries(
        self,
        account: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[LedgerEntry]:
        """Newest first; ``since`` inclusive, ``until`` exclusive."""
        c, query = ledger.c, _SELECT
        if account is not None:
            query = query.where(c.account == account)
        if since is not None:
            query = query.where(c.created_at >= _utc(since))
        if until is not None:
            query = query.where(c.created_at < _utc(until))
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        async with self._db.engine.connect() as conn:
            return [_entry(row) for row in await conn.execute(query)]

    async def scan(
        self, account: str, since: datetime | None, until: datetime | None, page: int = 1000
    ) -> AsyncIterator[list[LedgerEntry]]:
        """Oldest first, a page at a time, each page its own query: a range of any size is
        never held in memory, nor a connection between pages."""
        c = ledger.c
        query = sa.select(c.id, *(c[name] for name in _COLUMNS)).where(c.account == account)
        if since is not None:
            query = query.where(c.created_at >= _utc(since))
        if until is not None:
            query = query.where(c.created_at < _utc(until))
        query = query.order_by(c.created_at, c.id).limit(page)
        after: tuple[datetime, int] | None = None
        while True:
            paged = query
            if after is not None:  # keyset: no entry twice, whatever commits meanwhile
                at, last = after
                paged = query.where(
                    sa.or_(c.created_at > at, sa.and_(c.created_at == at, c.id > last))
                )
            async with self._db.engine.connect() as conn:
                rows = (await conn.execute(paged)).all()
            if not rows:
                return
            yield [_entry(row, skip=1) for row in rows]
            after = (rows[-1].created_at, rows[-1].id)

    async def by_request(self, request_id: str) -> LedgerEntry | None:
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(_SELECT.where(ledger.c.request_id == request_id))).first()
        return None if row is None else _entry(row)

    async def grant(self, account: str, amount: int, kind: str, note: str = "") -> None:
        """Credit ``account`` (a negative amount corrects an earlier grant); committed now."""
        now = datetime.now(UTC)
        async with self._db.begin_write() as conn:
            await conn.execute(
                credit_grants.insert().values(
                    account=account, amount=amount, kind=kind, note=note, created_at=now
                )
            )

    async def granted(self, account: str) -> int:
        return await self._sum(credit_grants.c.amount, credit_grants.c.account == account)

    async def spent(self, account: str) -> int:
        return (await usage_sums(self._db, account))[()].charge

    async def _sum(self, column: sa.Column[int], where: sa.ColumnElement[bool]) -> int:
        query = sa.select(sa.func.coalesce(sa.func.sum(column), 0)).where(where)
        async with self._db.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())


_SELECT = sa.select(*(ledger.c[name] for name in _COLUMNS))


def _utc(value: datetime) -> datetime:
    """SQLite stores a datetime's wall-clock digits and drops the offset, and compares them as
    text, so everything crosses into the database in UTC; naive values are taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_ROWS_A_LOT = 250


def _row(entry: LedgerEntry) -> tuple[Any, ...]:
    """The entry's values in ``_COLUMNS``' order, its times in UTC."""
    row: tuple[Any, ...] = _values(entry)
    return (*row[:_STARTED], _utc(entry.started_at), _utc(entry.created_at), *row[_CREATED + 1 :])


def _entry(row: sa.Row[Any], skip: int = 0) -> LedgerEntry:
    values = dict(zip(_COLUMNS, row[skip:], strict=True))
    values["started_at"], values["created_at"] = _utc(row.started_at), _utc(row.created_at)
    return LedgerEntry(**values)
