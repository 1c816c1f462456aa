"""Hourly roll-ups of the ledger, and the retention that prunes raw entries behind them.

A roll-up counts every raw entry not yet counted whose hour has ended (``created_at`` before
``until``'s hour) into ``ledger_hourly``, in one transaction: it takes the next roll-up number,
marks those entries with it (``rollup_id``), and adds the marked entries' sums, per hour,
account, model, plan and route, to the rows there (an upsert that adds). An entry is thus counted
once, by the one roll-up that marked it:

- Twice in a row, the second roll-up finds nothing unmarked. Replicas running it at once queue
  on a PostgreSQL advisory lock (SQLite has one writer anyway); even without the lock the
  marking ``UPDATE`` re-checks a row another roll-up marked first and skips it.
- A late entry (the journal replay of a crashed process inserts entries of hours already
  rolled up) is unmarked, so the next roll-up adds it to its hour's row, whether or not that
  hour's other raw entries are still kept. Until then sums read it raw (storage/usage.py).

Retention: ``prune`` deletes raw entries that a roll-up has counted and that are older than
their retention: ``default_days``, or longer where a plan says so, and the longer wins, for
the plan an entry was recorded under and for the plan its organisation is on now. Entries
not rolled up are never deleted. Roll-up rows are kept for ever: usage, quotas, balances and
statements are read from them for pruned hours; single entries (the ledger endpoint, entry
export) only while kept. One caveat: a crashed process's journal replayed after its entries
were committed, rolled up and pruned would add them again; that takes its journal directory
left unstarted for longer than the retention (a day at least).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .database import Database
from .tables import ledger, ledger_hourly, organisations, rollup_state
from .usage import SUMMED, floor_hour, hour_of, utc

# Any number constant to all replicas (the migrations' is 7_245_118_003).
_ROLLUP_LOCK = 7_245_118_006
_PRUNE_BATCH = 5000


async def roll_up(db: Database, until: datetime) -> int:
    """Roll up every entry of an hour that ended by ``until`` (truncated to the hour) and is
    not rolled up yet; returns how many entries it counted."""
    end = floor_hour(until)
    r, h, state = ledger.c, ledger_hourly.c, rollup_state.c
    async with db.begin_write() as conn:
        if not db.is_sqlite:
            await conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_ROLLUP_LOCK})"))
        number = int(
            (
                await conn.execute(
                    rollup_state.update()
                    .where(state.id == 1)
                    .values(last_rollup=state.last_rollup + 1)
                    .returning(state.last_rollup)
                )
            ).scalar_one()
        )
        marked = (
            await conn.execute(
                ledger.update()
                .where(r.rollup_id.is_(None), r.created_at < end)
                .values(rollup_id=number)
            )
        ).rowcount
        if marked:
            hour = hour_of(db, r.created_at)
            # max(org_id): it follows from the account, and grouping by it could give one
            # upsert two rows for one key, which PostgreSQL refuses.
            counted = (
                sa.select(
                    hour,
                    r.account,
                    sa.func.max(r.org_id),
                    r.model,
                    r.plan,
                    r.route,
                    sa.func.count(),
                    *(sa.func.sum(r[name]) for name in SUMMED),
                )
                .where(r.rollup_id == number)
                .group_by(hour, r.account, r.model, r.plan, r.route)
            )
            dialect: Any = sqlite if db.is_sqlite else postgresql
            insert = dialect.insert(ledger_hourly).from_select(
                ["hour", "account", "org_id", "model", "plan", "route", "requests", *SUMMED],
                counted,
            )
            added = ("requests", *SUMMED)
            await conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["hour", "account", "model", "plan", "route"],
                    set_={name: h[name] + insert.excluded[name] for name in added},
                )
            )
        await conn.execute(
            rollup_state.update()
            .where(state.id == 1, sa.or_(state.rolled_until.is_(None), state.rolled_until < end))
            .values(rolled_until=end)
        )
    return int(marked)


async def rolled_until(db: Database) -> datetime | None:
    """The newest hour boundary a roll-up has reached (late entries aside)."""
    async with db.engine.connect() as conn:
        found = (await conn.execute(sa.select(rollup_state.c.rolled_until))).scalar_one_or_none()
    return None if found is None else utc(found)


def _prunable(
    now: datetime, default_days: int, plan_days: dict[str, int]
) -> sa.ColumnElement[bool]:
    """Which raw entries are past their retention at ``now`` and rolled up."""
    r, now = ledger.c, utc(now)
    condition = sa.and_(r.rollup_id.is_not(None), r.created_at < now - timedelta(days=default_days))
    longer: dict[int, list[str]] = defaultdict(list)
    for plan, days in plan_days.items():
        if days > default_days:
            longer[days].append(plan)
    for days, plans in sorted(longer.items()):
        on_plan = sa.select(sa.literal("org:") + organisations.c.id).where(
            organisations.c.plan.in_(plans)
        )
        kept = sa.and_(
            r.created_at >= now - timedelta(days=days),
            sa.or_(r.plan.in_(plans), r.account.in_(on_plan)),
        )
        condition = sa.and_(condition, sa.not_(kept))
    return condition


async def prune(db: Database, now: datetime, default_days: int, plan_days: dict[str, int]) -> int:
    """Delete the raw entries past their retention that a roll-up has counted, a batch per
    transaction so neither database holds a long lock; returns how many."""
    if default_days <= 0:
        return 0  # raw entries kept for ever
    where = _prunable(now, default_days, plan_days)
    deleted = 0
    while True:
        batch = sa.select(ledger.c.id).where(where).limit(_PRUNE_BATCH).scalar_subquery()
        async with db.begin_write() as conn:
            count = int(
                (await conn.execute(ledger.delete().where(ledger.c.id.in_(batch)))).rowcount
            )
        deleted += count
        if count < _PRUNE_BATCH:
            return deleted
