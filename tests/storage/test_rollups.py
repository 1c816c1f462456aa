"""Hourly roll-ups and retention on both databases: sums, idempotence, concurrency, late
entries, what pruning deletes, and sums that stay the same once raw entries are gone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelgrid.storage.database import Database
from modelgrid.storage.ledger import Ledger, Totals
from modelgrid.storage.orgs import OrgStore
from modelgrid.storage.rollups import prune, roll_up, rolled_until
from modelgrid.storage.tables import ledger, ledger_hourly, metadata, rollup_state
from modelgrid.storage.usage import usage_since, usage_sums

from .ledger_data import ACCOUNTS, H0, commit, expected, hourly, raw_ids, spread, total
from .test_ledger import _alembic, _schema, entry

pytestmark = pytest.mark.anyio

HOUR = timedelta(hours=1)
END = H0 + 4 * HOUR  # roll-ups below cover hours 9:00 to 12:00; 13:00 and 14:00 stay raw
FAR = H0 + timedelta(days=400)  # for pruning everything rolled up


async def unrolled(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        query = sa.select(ledger.c.request_id).where(ledger.c.rollup_id.is_(None))
        return set((await conn.execute(query)).scalars())


async def test_roll_up_sums_each_complete_hour_exactly(db: Database, tmp_path: Path) -> None:
    entries = spread(300)
    await commit(db, tmp_path, entries)

    counted = await roll_up(db, END + timedelta(minutes=59))  # truncated to END
    before_end = [e for e in entries if e.created_at < END]
    assert counted == len(before_end) > 100
    by = ("hour", "account", "model", "plan")
    assert await hourly(db) == expected(before_end, by=by)
    assert await unrolled(db) == {e.request_id for e in entries if e.created_at >= END}
    assert await rolled_until(db) == END
    assert await raw_ids(db) == {e.request_id for e in entries}  # rolling up deletes nothing

    # Sums over the roll-ups and the raw rest equal the raw sums, per hour, model and plan.
    found = await usage_sums(db, None, by=("hour", "model", "plan"))
    assert found == expected(entries, by=("hour", "model", "plan"))


async def test_a_second_roll_up_adds_nothing(db: Database, tmp_path: Path) -> None:
    await commit(db, tmp_path, spread(120))
    first = await roll_up(db, END)
    rows = await hourly(db)
    assert first > 0 and rows
    assert await roll_up(db, END) == 0
    assert await roll_up(db, END - 2 * HOUR) == 0  # an older boundary changes nothing either
    assert await hourly(db) == rows
    assert await rolled_until(db) == END  # the watermark never moves back


async def test_concurrent_roll_ups_count_each_entry_once(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    entries = spread(400)
    await commit(db, tmp_path, entries)
    replicas = [Database(database_url) for _ in range(3)]
    try:
        counts = await asyncio.gather(*(roll_up(d, END) for d in [db, *replicas, db]))
    finally:
        for replica in replicas:
            await replica.close()
    before_end = [e for e in entries if e.created_at < END]
    assert sum(counts) == len(before_end)
    by = ("hour", "account", "model", "plan")
    assert await hourly(db) == expected(before_end, by=by)
    async with db.engine.connect() as conn:
        state = (await conn.execute(sa.select(rollup_state))).one()
    assert state.last_rollup == 5  # each took its own number


async def test_roll_ups_racing_new_entries_lose_none(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    entries = spread(600, hours=3)
    other = Database(database_url)

    async def writer() -> None:
        for start in range(0, len(entries), 50):
            await commit(db, tmp_path / str(start), entries[start : start + 50])

    async def roller() -> None:
        for _ in range(8):
            await roll_up(other, END)
            await asyncio.sleep(0)

    try:
        await asyncio.gather(writer(), roller())
        await roll_up(other, END)
    finally:
        await other.close()
    assert await unrolled(db) == set()
    by = ("hour", "account", "model", "plan")
    assert await hourly(db) == expected(entries, by=by)


async def test_late_entries_are_added_to_their_hour_even_after_pruning(
    db: Database, tmp_path: Path
) -> None:
    on_time = [entry(f"a-{i}", at=H0 + timedelta(minutes=10 * i)) for i in range(3)]
    await commit(db, tmp_path, on_time)
    assert await roll_up(db, END) == 3
    key = (H0, "org:acme", "smollm2-135m-instruct", "pro")
    assert (await hourly(db))[key] == expected(on_time, by=())[()]

    # A crashed process's journal, replayed later, brings an entry of that hour.
    late = entry("late-1", at=H0 + timedelta(minutes=59), tokens_in=7, charge=1_000)
    await commit(db, tmp_path, [late])
    book = Ledger(db, tmp_path)
    everything = expected([*on_time, late], account="org:acme", since=H0)[()]
    assert await book.totals("org:acme", H0) == everything  # counted raw meanwhile
    assert await book.spent("org:acme") == everything.charge
    assert await roll_up(db, END) == 1
    assert (await hourly(db))[key] == everything  # added to the hour, not replacing it
    assert await book.totals("org:acme", H0) == everything

    # Once the hour's raw entries are pruned, a late entry still joins its hour.
    assert await prune(db, FAR, 1, {}) == 4
    assert await raw_ids(db) == set()
    later = entry("late-2", at=H0 + timedelta(minutes=1), charge=5)
    await commit(db, tmp_path, [later])
    everything = expected([*on_time, late, later], by=())[()]
    assert await book.totals("org:acme", H0) == everything
    assert await roll_up(db, END) == 1
    assert (await hourly(db))[key] == everything
    assert await book.totals("org:acme", H0) == everything
    assert await book.spent("org:acme") == everything.charge


async def test_prune_deletes_only_rolled_up_entries_past_their_retention(
    db: Database, tmp_path: Path
) -> None:
    now = datetime(2027, 6, 1, 12, tzinfo=UTC)
    day = timedelta(days=1)
    upgraded = await OrgStore(db).ensure("upgraded", "enterprise", "free")
    entries = [
        entry("old-pro", at=now - 100 * day, plan="pro"),
        entry("old-enterprise", at=now - 100 * day, plan="enterprise"),
        entry("older-enterprise", at=now - 400 * day, plan="enterprise"),
        # Recorded under pro; its organisation is on enterprise now, whose retention wins.
        entry("old-upgraded", account=f"org:{upgraded.id}", at=now - 100 * day, plan="pro"),
        entry("recent-pro", at=now - 10 * day, plan="pro"),
        # free asks for 5 days, shorter than the default: the default wins.
        entry("free-20-days", at=now - 20 * day, plan="free"),
        entry("free-40-days", at=now - 40 * day, plan="free"),
    ]
    await commit(db, tmp_path, entries)
    await roll_up(db, now)
    late = entry("old-not-rolled-up", at=now - 100 * day, plan="pro")
    await commit(db, tmp_path, [late])

    plans = {"enterprise": 365, "free": 5, "pro": 0}
    book = Ledger(db, tmp_path)
    sums = {a: await book.spent(a) for a in ("org:acme", f"org:{upgraded.id}")}
    assert await prune(db, now, 0, plans) == 0  # 0: raw entries kept for ever
    assert await prune(db, now, 30, plans) == 3
    assert await raw_ids(db) == {
        "old-enterprise",
        "old-upgraded",
        "recent-pro",
        "free-20-days",
        "old-not-rolled-up",
    }
    assert await prune(db, now, 30, plans) == 0
    assert {a: await book.spent(a) for a in sums} == sums  # nothing lost from the sums
    # The late entry goes once rolled up, the enterprise ones once past 365 days.
    await roll_up(db, now)
    assert await prune(db, now + 300 * day, 30, plans) == 5
    assert await raw_ids(db) == set()
    assert {a: await book.spent(a) for a in sums} == sums


async def test_sums_are_the_same_before_and_after_pruning(db: Database, tmp_path: Path) -> None:
    entries = spread(500, start=H0 - timedelta(days=40), hours=40 * 24 + 4, seed=11)
    await commit(db, tmp_path, entries)
    book = Ledger(db, tmp_path)
    month = datetime(2026, 11, 1, tzinfo=UTC)
    starts = [month, H0 - timedelta(days=30), H0.replace(hour=0), H0 - 5 * HOUR]

    # One statement for several windows, as a new account's counters load: whole hours,
    # part-hours, and all time.
    together: list[datetime | None] = [*starts, None, H0 - 5 * HOUR + timedelta(minutes=7)]

    async def snapshot() -> object:
        return (
            [await book.totals(a, s) for a in ACCOUNTS for s in starts],
            [await book.spent(a) for a in ACCOUNTS],
            await book.by_model(month, H0),
            await usage_sums(db, "org:acme", by=("hour", "model", "plan")),
            [await book.totals_since(a, together) for a in ACCOUNTS],
            [await book.totals_since(a, [None]) for a in ACCOUNTS],  # one window alone
        )

    before = await snapshot()
    assert before == (
        [expected(entries, a, s)[()] for a in ACCOUNTS for s in starts],
        [expected(entries, a)[()].charge for a in ACCOUNTS],
        {k[0]: t for k, t in expected(entries, None, month, H0, ("model",)).items()},
        expected(entries, "org:acme", by=("hour", "model", "plan")),
        [[expected(entries, a, s)[()] for s in together] for a in ACCOUNTS],
        [[expected(entries, a)[()]] for a in ACCOUNTS],
    )
    await roll_up(db, H0)
    assert await snapshot() == before
    assert await prune(db, H0 + timedelta(days=3), 1, {}) > 400
    assert await snapshot() == before
    assert await raw_ids(db) == {e.request_id for e in entries if e.created_at >= H0}


async def test_windows_ending_inside_hours_read_their_edges_raw(
    db: Database, tmp_path: Path
) -> None:
    entries = spread(300, seed=3)
    await commit(db, tmp_path, entries)
    await roll_up(db, END)
    m = timedelta(minutes=1)
    windows = [
        (None, None),
        (H0 + 10 * m, H0 + 50 * m),  # inside one rolled-up hour
        (H0 + 10 * m, H0 + 3 * HOUR + 20 * m),
        (H0 + HOUR, H0 + 3 * HOUR),  # whole hours only
        (H0 + 30 * m, None),
        (None, H0 + 90 * m),
        (H0 + 3 * HOUR + 30 * m, H0 + 5 * HOUR + 30 * m),  # across the watermark
        (H0 + HOUR, H0 + HOUR),
        (H0 + 2 * HOUR, H0 + HOUR),
    ]
    for since, until in windows:
        for account in (None, "org:acme"):
            found = await usage_sums(db, account, since, until, by=("model",))
            assert found == expected(entries, account, since, until, ("model",)), (since, until)
            whole = await usage_sums(db, account, since, until)
            assert whole == expected(entries, account, since, until), (since, until)


async def test_nothing_to_roll_up_or_prune(db: Database) -> None:
    assert await roll_up(db, END) == 0
    assert await prune(db, FAR, 1, {"pro": 5}) == 0
    assert await hourly(db) == {}
    assert await usage_sums(db, "org:acme") == {(): Totals(0, 0, 0, 0, 0, 0, 0)}
    assert await usage_since(db, "org:acme", [None, END]) == [Totals(0, 0, 0, 0, 0, 0, 0)] * 2
    assert await usage_sums(db, None, by=("model",)) == {}


async def test_the_migration_matches_the_tables_and_downgrades(db: Database) -> None:
    async with db.engine.begin() as conn:
        schema = await conn.run_sync(_schema)
        for table in (ledger, ledger_hourly, rollup_state):
            assert schema[table.name] == (
                {c.name for c in table.columns},
                {str(i.name) for i in table.indexes},
                {str(u.name) for u in table.constraints if isinstance(u, sa.UniqueConstraint)},
            )
        assert (await conn.execute(sa.select(rollup_state))).all() == [(1, 0, None)]
        await conn.run_sync(_alembic, "downgrade", "0005")
        after = await conn.run_sync(_schema)
        assert "ledger_hourly" not in after and "rollup_state" not in after
        assert (
            "rollup_id" not in after["ledger"][0] and "ix_ledger_unrolled" not in after["ledger"][1]
        )
        await conn.run_sync(_alembic, "upgrade", "head")
        assert await conn.run_sync(_schema) == schema
    assert set(metadata.tables) <= set(schema)


async def test_routes_roll_up_apart_and_merge_back_on_downgrade(
    db: Database, tmp_path: Path
) -> None:
    """An auto model's entries keep their route and baseline through roll-up and pruning;
    the migration's downgrade folds the routes of one hour's row back together."""
    at = H0 + timedelta(minutes=5)
    entries = [
        entry("plain", at=at),
        entry("routed", at=at, route="auto", baseline=50_000),
        entry("routed#draft", at=at, route="auto"),
        entry("later", at=END + timedelta(minutes=1), route="auto", baseline=7),
    ]
    await commit(db, tmp_path, entries)
    book = Ledger(db, tmp_path / "journal")
    before = await book.by_route(H0, FAR)
    assert before[""] == total(entries[:1])
    assert before["auto"].requests == 3 and before["auto"].baseline == 50_007
    assert before["auto"].list_price == 3 * 9_000

    await roll_up(db, END)
    await prune(db, FAR, 1, {})
    assert await raw_ids(db) == {"later"}
    assert await book.by_route(H0, FAR) == before
    async with db.engine.begin() as conn:
        rows = (await conn.execute(sa.select(ledger_hourly.c.route))).scalars().all()
        assert sorted(rows) == ["", "auto"]
        await conn.run_sync(_alembic, "downgrade", "0012")
        merged = await conn.execute(sa.text("SELECT requests, list_price FROM ledger_hourly"))
        assert merged.all() == [(3, 3 * 9_000)]
        await conn.run_sync(_alembic, "upgrade", "head")
