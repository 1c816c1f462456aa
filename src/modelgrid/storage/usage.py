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
    params, edges = _params(account, since, until)
    # Built once per shape, the values bound: building the union and its cache key cost
    # about 1.4 ms of the event loop's time a call, and a new account's first request makes
    # three (its quota counters' loads), where the statement reused costs a tenth of that.
    shape = (account is not None, since is not None, until is not None, tuple(by), edges)
    query = db.statement(("usage_sums", *shape), lambda: _sums(db, *shape))
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query, params)).all()
    found = {
        tuple(_key(k, v) for k, v in zip(by, row[: len(by)], strict=True)): Totals(
            *(int(value) for value in row[len(by) :])
        )
        for row in rows
    }
    if not by:
        found.setdefault((), ZERO)
    return found


async def usage_since(
    db: Database, account: str, windows: Sequence[datetime | None]
) -> list[Totals]:
    """``account``'s totals since each of ``windows`` (None: of all time), in one statement:
    an account's first request loads its quota counters (the day's, the month's, the credits
    spent) with one round trip to the database rather than one each."""
    params: dict[str, Any] = {}
    shapes: list[int | None] = []  # per window: None for all time, else its edges' count
    for n, since in enumerate(windows):
        found, edges = _params(account, since, None, f"_{n}")
        params |= found
        shapes.append(None if since is None else edges)
    key = ("usage_since", *shapes)

    def build() -> sa.CompoundSelect[Any]:
        return sa.union_all(
            *(
                _sums(db, True, edges is not None, False, (), edges or 0, f"_{n}", n)
                for n, edges in enumerate(shapes)
            )
        )

    query = db.statement(key, build)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query, params)).all()
    totals = dict.fromkeys(range(len(windows)), ZERO)
    for window, *values in rows:
        totals[int(window)] = Totals(*(int(value) for value in values))
    return [totals[n] for n in range(len(windows))]


def _params(
    account: str | None, since: datetime | None, until: datetime | None, suffix: str = ""
) -> tuple[dict[str, Any], int]:
    """A window's bound values, each name ending in ``suffix``, and its part-hours' count."""
    since = None if since is None else utc(since)
    until = None if until is None else utc(until)
    params: dict[str, Any] = {"account": account}
    if since is not None:
        params |= {"since": since, "rolled_since": ceil_hour(since)}
    if until is not None:
        params |= {"until": until, "rolled_until": floor_hour(until)}
    edges = _edges(since, until)
    for n, (start, end) in enumerate(edges):
        params |= {f"edge{n}_start": start, f"edge{n}_end": end}
    return {name + suffix: value for name, value in params.items()}, len(edges)


def _sums(
    db: Database,
    for_account: bool,
    bounded_since: bool,
    bounded_until: bool,
    by: tuple[Key, ...],
    edges: int,
    suffix: str = "",
    window: int | None = None,
) -> sa.Select[Any]:
    """``usage_sums``'s statement for one shape, its values as bound parameters (their names
    ending in ``suffix``); with ``window``, that number as the first column."""
    h, r = ledger_hourly.c, ledger.c

    def bound(name: str) -> sa.BindParameter[Any]:
        return sa.bindparam(name + suffix)

    account: sa.BindParameter[str] = bound("account")

    rolled = sa.select(
        *(h[k].label(k) for k in by),
        sa.func.sum(h.requests).label("requests"),
        *(sa.func.sum(h[name]).label(name) for name in SUMMED),
    )
    if for_account:
        rolled = rolled.where(h.account == account)
    if bounded_since:  # whole hours only
        rolled = rolled.where(h.hour >= bound("rolled_since"))
    if bounded_until:
        rolled = rolled.where(h.hour < bound("rolled_until"))

    raw_keys = [hour_of(db, r.created_at) if k == "hour" else r[k] for k in by]

    def raw(*where: sa.ColumnElement[bool]) -> sa.Select[Any]:
        query = sa.select(
            *(key.label(k) for key, k in zip(raw_keys, by, strict=True)),
            sa.func.count().label("requests"),
            *(sa.func.sum(r[name]).label(name) for name in SUMMED),
        ).where(*where)
        if for_account:
            query = query.where(r.account == account)
        return query.group_by(*raw_keys) if by else query

    unrolled: list[sa.ColumnElement[bool]] = [r.rollup_id.is_(None)]
    if bounded_since:
        unrolled.append(r.created_at >= bound("since"))
    if bounded_until:
        unrolled.append(r.created_at < bound("until"))
    parts = [rolled.group_by(*(h[k] for k in by)) if by else rolled, raw(*unrolled)]
    for n in range(edges):
        parts.append(
            raw(
                r.rollup_id.is_not(None),
                r.created_at >= bound(f"edge{n}_start"),
                r.created_at < bound(f"edge{n}_end"),
            )
        )

    union = sa.union_all(*parts).subquery()
    keys = [union.c[k] for k in by]
    numbered: list[sa.ColumnElement[Any]] = (
        [] if window is None else [sa.literal_column(str(window)).label("window")]
    )
    query = sa.select(
        *numbered,
        *keys,
        sa.func.coalesce(sa.func.sum(union.c.requests), 0),
        *(sa.func.coalesce(sa.func.sum(union.c[name]), 0) for name in SUMMED),
    )
    return query.group_by(*keys).order_by(*keys) if by else query


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
