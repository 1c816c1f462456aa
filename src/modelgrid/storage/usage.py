"""Sums over the ledger that stay right after retention has pruned raw entries.

Every entry is counted exactly once, from one of two places: an entry that a roll-up has
counted (``rollup_id`` set) is counted through its row in ``ledger_hourly``, and one not yet
rolled up from the raw ``ledger``. A window ``[since, until)`` takes the roll-up rows of the
whole hours inside it, the raw entries not yet rolled up anywhere in it, and the rolled-up raw
entries in the part-hours at its edges (a roll-up row cannot be split). So a window whose ends
fall on hours (every quota window, month and statement does) is exact whatever has been pruned;
a window ending mid-hour is exact while that hour's raw entries are retained, and after they
are pruned leaves out the rolled-up ones of that part-hour. Each sum is one SQL statement, so
it sees one snapshot: never an entry both marked and not, however a roll-up races it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa

from .database import Database
from .tables import credit_grants, ledger, ledger_hourly

SUMMED = ("tokens_in", "tokens_cached", "tokens_out", "list_price", "charge", "cost", "baseline")
Key = Literal["hour", "account", "model", "plan", "route"]
HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Totals:
    requests: int
    tokens_in: int
    tokens_cached: int
    tokens_out: int
    list_price: int
    charge: int
    cost: int
    baseline: int = 0  # list price on an auto's large model, for the entries an auto routed


ZERO = Totals(0, 0, 0, 0, 0, 0, 0, 0)


def utc(value: datetime) -> datetime:
    """SQLite stores a datetime's wall-clock digits and drops the offset, and compares them as
    text, so everything crosses into the database in UTC; naive values are taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def floor_hour(value: datetime) -> datetime:
    return utc(value).replace(minute=0, second=0, microsecond=0)


def ceil_hour(value: datetime) -> datetime:
    floor = floor_hour(value)
    return floor if floor == utc(value) else floor + HOUR


def hour_of(db: Database, column: sa.ColumnElement[datetime]) -> sa.ColumnElement[datetime]:
    """The start of the UTC hour holding ``column``, computed in the database. On SQLite it is
    text in the very form SQLAlchemy stores datetimes in, so it compares with bound values."""
    # Literals, not bound parameters: GROUP BY must see the very expression SELECT has.
    if db.is_sqlite:
        text = sa.func.strftime(sa.literal_column("'%Y-%m-%d %H:00:00.000000'"), column)
        return sa.type_coerce(text, sa.DateTime(timezone=True))
    zone: sa.ColumnElement[str] = sa.literal_column("'UTC'")
    naive = sa.func.timezone(zone, column)
    hour = sa.func.date_trunc(sa.literal_column("'hour'"), naive)
    return sa.type_coerce(sa.func.timezone(zone, hour), sa.DateTime(timezone=True))


def _edges(since: datetime | None, until: datetime | None) -> list[tuple[datetime, datetime]]:
    """The window's part-hours: from ``since`` up to the next hour, and from the last hour
    up to ``until``; one range when both ends fall inside the same hour."""
    edges: list[tuple[datetime, datetime]] = []
    if since is not None and ceil_hour(since) != since:
        edges.append((since, ceil_hour(since) if until is None else min(ceil_hour(since), until)))
    if until is not None and floor_hour(until) != until:
        start = max([floor_hour(until), *(end for _, end in edges)])
        if start < until:
            edges.append((start, until))
    return edges


async def usage_sums(
    db: Database,
    account: str | None,
    since: datetime | None = None,
    until: datetime | None = None,
    by: Sequence[Key] = (),
) -> dict[tuple[Any, ...], Totals]:
    """Entries of ``account`` (None: every account) created in ``[since, until)`` (None: no
    bound), summed per distinct value of the ``by`` columns, in their order; with no ``by``,
    the one key ``()``, present even when nothing matched."""
    since = None if since is None else utc(since)
    until = None if until is None else utc(until)
    h, r = ledger_hourly.c, ledger.c

    rolled = sa.select(
        *(h[k].label(k) for k in by),
        sa.func.sum(h.requests).label("requests"),
        *(sa.func.sum(h[name]).label(name) for name in SUMMED),
    )
    if account is not None:
        rolled = rolled.where(h.account == account)
    if since is not None:  # whole hours only
        rolled = rolled.where(h.hour >= ceil_hour(since))
    if until is not None:
        rolled = rolled.where(h.hour < floor_hour(until))

    raw_keys = [hour_of(db, r.created_at) if k == "hour" else r[k] for k in by]

    def raw(*where: sa.ColumnElement[bool]) -> sa.Select[Any]:
        query = sa.select(
            *(key.label(k) for key, k in zip(raw_keys, by, strict=True)),
            sa.func.count().label("requests"),
            *(sa.func.sum(r[name]).label(name) for name in SUMMED),
        ).where(*where)
        if account is not None:
            query = query.where(r.account == account)
        return query.group_by(*raw_keys) if by else query

    unrolled: list[sa.ColumnElement[bool]] = [r.rollup_id.is_(None)]
    if since is not None:
        unrolled.append(r.created_at >= since)
    if until is not None:
        unrolled.append(r.created_at < until)
    parts = [rolled.group_by(*(h[k] for k in by)) if by else rolled, raw(*unrolled)]
    for start, end in _edges(since, until):
        parts.append(raw(r.rollup_id.is_not(None), r.created_at >= start, r.created_at < end))

    union = sa.union_all(*parts).subquery()
    keys = [union.c[k] for k in by]
    query = sa.select(
        *keys,
        sa.func.coalesce(sa.func.sum(union.c.requests), 0),
        *(sa.func.coalesce(sa.func.sum(union.c[name]), 0) for name in SUMMED),
    )
    if by:
        query = query.group_by(*keys).order_by(*keys)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    found = {
        tuple(_key(k, v) for k, v in zip(by, row[: len(by)], strict=True)): Totals(
            *(int(value) for value in row[len(by) :])
        )
        for row in rows
    }
    if not by:
        found.setdefault((), ZERO)
    return found


def _key(name: str, value: Any) -> Any:
    return utc(value) if name == "hour" else value


async def grants_by_kind(
    db: Database, account: str, since: datetime | None = None, until: datetime | None = None
) -> dict[str, int]:
    """Credits granted to ``account`` in ``[since, until)``, per kind (never pruned)."""
    c = credit_grants.c
    query = sa.select(c.kind, sa.func.sum(c.amount)).where(c.account == account)
    if since is not None:
        query = query.where(c.created_at >= utc(since))
    if until is not None:
        query = query.where(c.created_at < utc(until))
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query.group_by(c.kind).order_by(c.kind))).all()
    return {str(kind): int(amount) for kind, amount in rows}
