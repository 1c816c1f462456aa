"""The journal's flush: callers that arrive together share one commit, and each commit that
answers a caller began after that caller asked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from modelgrid.storage.journal import Journal

pytestmark = pytest.mark.anyio


class Recorder:
    """A commit that records its batches; the first waits until ``release`` is set, the
    others see one more item appended meanwhile, as requests under load do."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.traffic: Journal[str] | None = None

    async def __call__(self, batch: list[str]) -> None:
        self.batches.append(list(batch))
        self.entered.set()
        if len(self.batches) == 1:
            await self.release.wait()
        elif self.traffic is not None:
            self.traffic.append(f"t{len(self.batches)}")


def journal(directory: Path, commit: Callable[[list[str]], Awaitable[None]]) -> Journal[str]:
    return Journal(
        directory,
        encode=str.encode,
        decode=bytes.decode,
        commit=commit,
        describe=str,
        log=logging.getLogger("test.journal"),
        name="test",
        flush_interval=3600,  # flushed by the test only
    )


async def test_callers_arriving_during_a_flush_share_the_next_one(tmp_path: Path) -> None:
    commit = Recorder()
    items = journal(tmp_path, commit)
    commit.traffic = items
    await items.start()
    try:
        items.append("a")
        first = asyncio.ensure_future(items.flush())
        await commit.entered.wait()  # the first flush is committing ["a"]
        items.append("b")
        items.append("c")
        waiting = [asyncio.ensure_future(items.flush()) for _ in range(10)]
        await asyncio.sleep(0)
        commit.release.set()
        assert await first is True
        assert await asyncio.gather(*waiting) == [True] * 10
        # Ten callers, one commit after the one they found under way: it began after each
        # of them asked, so it holds what they had appended. (Taking turns, each would have
        # committed what the traffic appended during the turn before: ten commits.)
        assert commit.batches == [["a"], ["b", "c"]]
        assert items.pending == 1  # t2, appended during that commit
        items.append("d")
        assert await items.flush() is True  # a caller after that gets a flush of its own
        assert commit.batches[-1] == ["t2", "d"]
    finally:
        commit.traffic = None  # quiet, so that close() commits all and ends
        await items.close()


async def test_a_failed_flush_is_reported_to_each_caller_it_answered(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    async def refuse(batch: list[str]) -> None:
        calls.append(list(batch))
        raise RuntimeError("database away")

    items = journal(tmp_path, refuse)
    await items.start()
    try:
        items.append("a")
        assert list(await asyncio.gather(items.flush(), items.flush())) == [False, False]
        assert items.pending == 1  # kept, journaled, for the next flush
    finally:
        items._commit = _accept  # the database back: close() commits what was kept
        await items.close()
    assert items.pending == 0


async def _accept(batch: list[str]) -> None:
    pass
