"""The change feed's cursor: ids read past it, the gaps PostgreSQL can leave, and their end."""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import pytest

from modelgrid.changes import MAX_HOLES, ChangeFeed, Cursor, advance
from modelgrid.storage.changes import Change, ChangeStore

pytestmark = pytest.mark.anyio


def test_reading_in_order_moves_the_cursor_and_leaves_no_hole() -> None:
    cursor = advance(Cursor(4), [5, 6, 7], now=10.0, hole_seconds=60)
    assert cursor == Cursor(7, {})
    assert advance(cursor, [], now=11.0, hole_seconds=60) == Cursor(7, {})


def test_an_id_skipped_over_is_a_hole_until_it_appears() -> None:
    """A transaction that took id 6 commits after the one that took 7: 6 is read later."""
    cursor = advance(Cursor(5), [7, 9], now=10.0, hole_seconds=60)
    assert cursor == Cursor(9, {6: 10.0, 8: 10.0})
    cursor = advance(cursor, [6], now=10.5, hole_seconds=60)
    assert cursor == Cursor(9, {8: 10.0})
    cursor = advance(cursor, [8, 10], now=11.0, hole_seconds=60)
    assert cursor == Cursor(10, {})


def test_a_hole_is_given_up_after_hole_seconds() -> None:
    """A rolled-back transaction's id never appears."""
    cursor = advance(Cursor(0), [2], now=0.0, hole_seconds=60)
    assert cursor.holes == {1: 0.0}
    assert advance(cursor, [], now=59.0, hole_seconds=60).holes == {1: 0.0}
    assert advance(cursor, [], now=60.0, hole_seconds=60).holes == {}


def test_holes_are_bounded_and_the_newest_kept() -> None:
    cursor = advance(Cursor(0), [5 * MAX_HOLES], now=0.0, hole_seconds=60)
    assert len(cursor.holes) == MAX_HOLES
    assert min(cursor.holes) == 4 * MAX_HOLES and max(cursor.holes) == 5 * MAX_HOLES - 1
    cursor = advance(cursor, [5 * MAX_HOLES + 3], now=1.0, hole_seconds=60)
    assert len(cursor.holes) == MAX_HOLES
    assert max(cursor.holes) == 5 * MAX_HOLES + 2


class FlakyStore:
    """A change store whose database is away for the first ``failures`` reads."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.reads = 0
        self.recovered = asyncio.Event()

    async def latest(self) -> int:
        return 0

    async def since(self, cursor: int, holes: object = ()) -> list[Change]:
        self.reads += 1
        if self.reads <= self.failures:
            raise OSError("connection refused")
        self.recovered.set()
        return [Change(cursor + 1, "key", "abc")]

    async def prune(self, before: object) -> int:
        return 0


async def test_an_outage_is_logged_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore(failures=5)
    feed = ChangeFeed(cast(ChangeStore, store), interval=0.001)
    told: list[str] = []
    feed.listen("key", told.append)
    await feed.start()
    try:
        with caplog.at_level(logging.WARNING, logger="modelgrid.changes"):
            await asyncio.wait_for(store.recovered.wait(), 5)
            while not told:  # noqa: ASYNC110 (the listener runs right after the read)
                await asyncio.sleep(0.001)
    finally:
        await feed.close()
    failed = [r for r in caplog.records if "read failed" in r.getMessage()]
    back = [r for r in caplog.records if "read again" in r.getMessage()]
    assert len(failed) == 1 and failed[0].exc_info is not None  # not one a second
    assert len(back) == 1
    assert told[0] == "abc"
