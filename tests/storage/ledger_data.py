"""Ledger entries for the roll-up, retention, statement and export tests, and the sums worked
out from them in Python, independently of the SQL under test."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from modelgrid.storage.database import Database
from modelgrid.storage.ledger import Ledger, LedgerEntry, Totals
from modelgrid.storage.tables import ledger, ledger_hourly

from .test_ledger import entry

H0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)  # an hour boundary
ACCOUNTS = ("org:acme", "org:globex", "key:solo")
MODELS = ("large", "small")
PLANS = ("pro", "free")


def spread(
    count: int, start: datetime = H0, hours: int = 6, seed: int = 7, prefix: str = "r"
) -> list[LedgerEntry]:
    """``count`` entries at random instants in ``hours`` hours from ``start``, across
    accounts, models and plans, with varied tokens and money."""
    rng = random.Random(seed)
    made = []
    for i in range(count):
        account = rng.choice(ACCOUNTS)
        made.append(
            entry(
                f"{prefix}-{i}",
                account=account,
                at=start + timedelta(microseconds=rng.randrange(hours * 3_600_000_000)),
                model=rng.choice(MODELS),
                plan=rng.choice(PLANS),
                tokens_in=rng.randrange(1, 5000),
                tokens_cached=rng.randrange(0, 100),
                tokens_out=rng.randrange(0, 2000),
                list_price=rng.randrange(0, 10**12),
                charge=rng.randrange(0, 10**12),
                cost=rng.randrange(0, 10**9),
            )
        )
    return made


async def commit(db: Database, journal: Path, entries: Iterable[LedgerEntry]) -> None:
    book = Ledger(db, journal, flush_interval=3600)
    await book.start()
    for e in entries:
        book.append(e)
    assert await book.flush()
    await book.close()


def utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def total(entries: Iterable[LedgerEntry]) -> Totals:
    found = list(entries)
    return Totals(
        len(found),
        *(
            sum(getattr(e, name) for e in found)
            for name in ("tokens_in", "tokens_cached", "tokens_out", "list_price", "charge", "cost")
        ),
    )


def expected(
    entries: Iterable[LedgerEntry],
    account: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    by: Sequence[str] = (),
) -> dict[tuple[Any, ...], Totals]:
    groups: dict[tuple[Any, ...], list[LedgerEntry]] = defaultdict(list)
    for e in entries:
        if account is not None and e.account != account:
            continue
        if (since is not None and e.created_at < since) or (
            until is not None and e.created_at >= until
        ):
            continue
        key = tuple(hour(e.created_at) if k == "hour" else getattr(e, k) for k in by)
        groups[key].append(e)
    found = {key: total(group) for key, group in sorted(groups.items())}
    return found or ({(): total([])} if not by else {})


async def hourly(db: Database) -> dict[tuple[Any, ...], Totals]:
    """Every roll-up row, keyed by (hour, account, model, plan)."""
    h = ledger_hourly.c
    names = ("requests", "tokens_in", "tokens_cached", "tokens_out", "list_price", "charge", "cost")
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(h.hour, h.account, h.model, h.plan, *(h[n] for n in names))
            )
        ).all()
    return {(utc(row[0]), *row[1:4]): Totals(*(int(v) for v in row[4:])) for row in rows}


async def raw_ids(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set((await conn.execute(sa.select(ledger.c.request_id))).scalars())
