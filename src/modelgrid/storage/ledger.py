"""The ledger: one entry per finished request, written to the database in batches.

The request path only calls ``append``: one ``os.write`` of a JSON line to this process's journal
segment, opened with O_APPEND, and a list append. A background task commits pending entries in
one transaction every ``flush_interval`` seconds and then deletes the segments they came from.

Durability: the journal is not fsynced. A line handed to ``os.write`` is in the kernel's page
cache, so it survives the process being killed (kill -9, the OOM killer, a crash), which is the
failure guarded against here; a power loss or kernel panic may lose the last few seconds. The next
``start()`` in the same ``journal_dir`` replays segments whose owner is gone (their ``flock`` is
free) and deletes them. Inserts ignore a ``request_id`` already present, so replaying a segment
that was partly or wholly committed never counts a request twice: for a given request_id the
first entry committed wins.

Money is in integer micro-credits (1 credit = 1,000,000).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .database import Database
from .tables import credit_grants, ledger
from .usage import Totals as Totals
from .usage import usage_sums

log = logging.getLogger("modelgrid.ledger")

# Across Ledger instances too, so two in one process never pick the same name.
_segment_numbers = itertools.count()


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


class Ledger:
    def __init__(
        self,
        db: Database,
        journal_dir: Path,
        flush_interval: float = 0.05,
        batch_max: int = 1000,
    ) -> None:
        self._db = db
        self._dir = Path(journal_dir)
        self._flush_interval = flush_interval
        self._batch_max = batch_max
        self._pending: list[LedgerEntry] = []
        # Segments whose entries are all pending or committed but which are not yet deleted;
        # their fds stay open so the flock tells other processes they are not orphans.
        self._uncommitted: dict[Path, int] = {}
        self._segment: Path | None = None
        self._fd = -1
        self._written = 0  # lines in the current segment
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._quiet_until = 0.0
        self.replayed = 0

    @property
    def db(self) -> Database:
        return self._db

    @property
    def pending(self) -> int:
        """Entries appended but not yet committed."""
        return len(self._pending)

    def append(self, entry: LedgerEntry) -> None:
        if self._fd < 0:
            raise RuntimeError("Ledger.append() before start() or after close()")
        try:
            os.write(self._fd, entry.to_json() + b"\n")
            self._written += 1
        except OSError:
            # A full disk must not fail the request: the entry is still committed from memory
            # unless the process also dies before the next flush.
            log.exception("ledger: could not journal request %s", entry.request_id)
        self._pending.append(entry)

    async def start(self) -> None:
        """Recover what dead processes left in the journal, then begin journaling and flushing."""
        self._dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(self._dir.glob("journal-*.jsonl")):
            self._adopt(path)
        self._open_segment()
        if self._pending or self._uncommitted:
            await self.flush()  # a failure is logged; the task retries
        self._task = asyncio.create_task(self._run(), name="ledger-flush")

    async def flush(self) -> bool:
        """Commit the pending entries now; False (logged) when the database refused them, in
        which case they stay pending and journaled, and the next flush retries."""
        async with self._lock:
            if self._fd < 0:
                return not self._pending  # closed, or never started: nothing to swap or write
            try:
                if self._written:
                    # Later appends go to a fresh segment, so the old one can be deleted as soon
                    # as what it holds is committed.
                    assert self._segment is not None
                    old, old_fd = self._segment, self._fd
                    self._open_segment()
                    self._uncommitted[old] = old_fd
                batch, done = self._pending[:], dict(self._uncommitted)
                if batch:
                    await self._insert(batch)
            except Exception:
                if not self._failing or time.monotonic() >= self._quiet_until:
                    log.exception("ledger: %d entries not committed; retrying", len(self._pending))
                    self._quiet_until = time.monotonic() + 30  # one traceback per outage, not 20/s
                self._failing = True
                return False
            del self._pending[: len(batch)]
            for path, fd in done.items():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # before close: the lock must outlive the file
                os.close(fd)
                del self._uncommitted[path]
            if self._failing:
                log.warning("ledger: committed %d entries after earlier failures", len(batch))
                self._failing = False
            return True

    async def close(self) -> None:
        """Stop flushing, commit what is pending, and remove the journal if all of it committed;
        otherwise the segments stay for the next start() to replay."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._fd < 0:
            return
        committed = await self.flush()
        while committed and self._pending:  # appended while that flush waited on the database
            committed = await self.flush()
        # No await from here on, so nothing is appended to a segment being removed.
        if not self._written and self._segment is not None:
            self._segment.unlink(missing_ok=True)
        for fd in [self._fd, *self._uncommitted.values()]:
            os.close(fd)
        self._uncommitted.clear()
        self._fd, self._segment = -1, None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval)
            if self._pending or self._uncommitted:
                await self.flush()

    def _open_segment(self) -> None:
        name = f"journal-{os.getpid()}-{next(_segment_numbers)}-{os.urandom(4).hex()}.jsonl"
        # Created under a name start() does not look at, and locked before it gets its real one:
        # another process must never see it unlocked and take it for an orphan.
        hidden = self._dir / f".{name}"
        fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(hidden, self._dir / name)
        except BaseException:
            os.close(fd)
            hidden.unlink(missing_ok=True)
            raise
        self._segment, self._fd, self._written = self._dir / name, fd, 0

    def _adopt(self, path: Path) -> None:
        """Take over a dead process's segment: its entries become pending here, and it is
        deleted once they are committed."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return  # committed and deleted by its owner meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return  # a live process's
        if os.fstat(fd).st_nlink == 0:
            os.close(fd)  # its owner deleted it between our open and our lock
            return
        with open(fd, "rb", closefd=False) as file:
            lines = file.read().split(b"\n")
        # The last piece has no newline: empty, or a line cut short by the kill.
        for number, line in enumerate(lines[:-1], 1):
            try:
                self._pending.append(LedgerEntry.from_json(line))
                self.replayed += 1
            except (ValueError, TypeError, KeyError):
                log.error("ledger: skipping unreadable line %d of %s", number, path.name)
        self._uncommitted[path] = fd

    async def _insert(self, batch: list[LedgerEntry]) -> None:
        dialect: Any = sqlite if self._db.is_sqlite else postgresql
        statement = dialect.insert(ledger).on_conflict_do_nothing(index_elements=["request_id"])
        rows = [_row(entry) for entry in batch]
        async with self._db.engine.begin() as conn:
            for start in range(0, len(rows), self._batch_max):
                await conn.execute(statement, rows[start : start + self._batch_max])

    # Queries see committed entries only: flush() first to include the pending ones. Sums
    # read the hourly roll-ups where they cover raw entries, so they outlive retention (see
    # storage/usage.py); entries themselves are gone once pruned.

    async def by_model(self, since: datetime, until: datetime) -> dict[str, Totals]:
        """Every account's entries in [since, until), summed per model."""
        found = await usage_sums(self._db, None, since, until, by=("model",))
        return {key[0]: totals for key, totals in found.items()}

    async def totals(self, account: str, since: datetime) -> Totals:
        return (await usage_sums(self._db, account, since))[()]

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
        async with self._db.engine.begin() as conn:
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


def _row(entry: LedgerEntry) -> dict[str, Any]:
    row = {name: getattr(entry, name) for name in _COLUMNS}
    row["started_at"], row["created_at"] = _utc(entry.started_at), _utc(entry.created_at)
    return row


def _entry(row: sa.Row[Any], skip: int = 0) -> LedgerEntry:
    values = dict(zip(_COLUMNS, row[skip:], strict=True))
    values["started_at"], values["created_at"] = _utc(row.started_at), _utc(row.created_at)
    return LedgerEntry(**values)
