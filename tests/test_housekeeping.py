"""The background housekeeping: roll-ups every hour, pruning once a day, failures survived."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelgrid.housekeeping import Housekeeping
from modelgrid.storage.contents import ContentStore, StoredContent
from modelgrid.storage.database import Database
from modelgrid.storage.ledger import Ledger

from .storage.ledger_data import commit, expected, hourly, raw_ids
from .storage.test_ledger import entry

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 28, 12, 0, 10, tzinfo=UTC)
DAY = timedelta(days=1)


async def test_rolls_up_each_round_and_prunes_once_a_day(db: Database, tmp_path: Path) -> None:
    clock = [NOW]
    keeper = Housekeeping(db, 1, {"enterprise": 30}, clock=lambda: clock[0])
    old = [entry("old", at=NOW - 3 * DAY), entry("kept", at=NOW - 3 * DAY, plan="enterprise")]
    recent = [entry("this-hour", at=NOW - timedelta(seconds=5))]
    await commit(db, tmp_path, [*old, *recent])

    await keeper.run_once()
    assert await raw_ids(db) == {"kept", "this-hour"}  # rolled up, then pruned
    book = Ledger(db, tmp_path)
    assert await book.spent("org:acme") == 3 * 7_200

    late = entry("late", at=NOW - 3 * DAY)
    await commit(db, tmp_path, [late])
    clock[0] = NOW + timedelta(hours=1)
    await keeper.run_once()  # rolls up the late entry and this hour; prunes only daily
    assert await raw_ids(db) == {"kept", "this-hour", "late"}
    assert sum(t.requests for t in (await hourly(db)).values()) == 4
    clock[0] = NOW + DAY + timedelta(hours=1)
    await keeper.run_once()
    assert await raw_ids(db) == {"kept"}
    assert await book.spent("org:acme") == expected([*old, *recent, late])[()].charge


def test_the_next_round_is_a_little_after_the_hour() -> None:
    clock = [NOW]
    keeper = Housekeeping(Database("sqlite://"), 90, {}, clock=lambda: clock[0], delay=30)
    assert keeper.seconds_to_next_round() == 3590 + 30
    clock[0] = NOW.replace(minute=59, second=50)
    assert keeper.seconds_to_next_round() == 10 + 30


async def test_a_database_failure_is_logged_and_survived(caplog: pytest.LogCaptureFixture) -> None:
    down = Database("postgresql://postgres@127.0.0.1:9/nowhere")  # nothing listens on port 9
    keeper = Housekeeping(down, 90, {})
    try:
        with caplog.at_level(logging.ERROR, logger="modelgrid.housekeeping"):
            await keeper.run_once()
    finally:
        await down.close()
    assert [r.getMessage() for r in caplog.records] == ["ledger roll-up failed; retrying next hour"]


async def test_start_rolls_up_at_once_and_close_stops_it(db: Database, tmp_path: Path) -> None:
    entries = [
        entry(f"e-{i}", at=datetime.now(UTC) - timedelta(hours=2, minutes=i)) for i in range(3)
    ]
    await commit(db, tmp_path, entries)
    keeper = Housekeeping(db, 0, {})
    keeper.start()
    try:
        for _ in range(500):
            if sum(t.requests for t in (await hourly(db)).values()) == 3:
                break
            await asyncio.sleep(0.01)
        assert sum(t.requests for t in (await hourly(db)).values()) == 3
    finally:
        await keeper.close()
    assert await raw_ids(db) == {e.request_id for e in entries}  # retention 0: all kept
    await keeper.close()  # twice is harmless


async def test_stored_conversations_past_their_retention_are_pruned_daily(
    db: Database, tmp_path: Path
) -> None:
    store = ContentStore(db, tmp_path / "journal", flush_interval=3600)
    await store.start()
    try:
        for i, age in enumerate([40, 20, 0]):
            content = StoredContent(
                f"chatcmpl-{i}", NOW - age * DAY, "org", "key", "m", [], None, (f"text {i}",), {}
            )
            store.append(content)
        await store.flush()
        clock = [NOW]
        keeper = Housekeeping(
            db, 90, {}, clock=lambda: clock[0], contents=store, content_retention_days=30
        )
        await keeper.run_once()
        assert await store.get("chatcmpl-0") is None
        assert await store.get("chatcmpl-1") is not None and await store.get("chatcmpl-2")
        forever = Housekeeping(db, 90, {}, contents=store, content_retention_days=0)
        clock[0] = NOW + 100 * DAY
        await forever.run_once()
        assert await store.get("chatcmpl-1") is not None
    finally:
        await store.close()
