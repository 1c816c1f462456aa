"""The journal's flush: callers that arrive together share one commit, and each commit that
answers a caller began after that caller asked."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from modelgrid.storage.journal import PIECE_BYTES, HandOffUnavailable, Journal, split_lines

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


class Forward:
    """A ``forward`` that records the lines handed over, or fails as told (after running
    ``meanwhile``, what a request might do while a batch is handed over)."""

    def __init__(self) -> None:
        self.handed: list[list[bytes]] = []
        self.fail: Exception | None = None
        self.meanwhile: Callable[[], None] = lambda: None

    async def __call__(self, lines: memoryview) -> None:
        self.meanwhile()
        if self.fail is not None:
            raise self.fail
        self.handed.append(split_lines(lines))


def forwarding(
    directory: Path,
    commit: Recorder,
    forward: Callable[[memoryview], Awaitable[None]] | None,
    max_backlog: int = 0,
    piece_bytes: int = PIECE_BYTES,
) -> Journal[str]:
    return Journal(
        directory,
        encode=str.encode,
        decode=decode_word,
        commit=commit,
        describe=str,
        log=logging.getLogger("test.journal"),
        name="test",
        flush_interval=3600,
        forward=forward,
        max_backlog=max_backlog,
        piece_bytes=piece_bytes,
    )


def decode_word(line: bytes) -> str:
    if not line.isalnum():
        raise ValueError(f"not a word: {line!r}")
    return line.decode()


async def test_with_forward_the_journal_lines_are_handed_over_not_committed_here(
    tmp_path: Path,
) -> None:
    commit, forward = Recorder(), Forward()
    commit.release.set()
    items = forwarding(tmp_path, commit, forward)
    await items.start()
    try:
        items.append("a")
        items.append("b")
        assert items.pending == 2
        assert await items.flush()
        assert items.pending == 0
        assert forward.handed == [[b"a", b"b"]]
        assert commit.batches == []
        assert await items.flush()  # nothing pending: nothing handed over
        assert forward.handed == [[b"a", b"b"]]
    finally:
        await items.close()
    assert os.listdir(tmp_path) == []  # committed through the other process: deleted


async def test_a_batch_the_other_process_cannot_take_is_committed_here(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    commit, forward = Recorder(), Forward()
    commit.release.set()
    forward.fail = HandOffUnavailable("no writer")
    items = forwarding(tmp_path, commit, forward)
    await items.start()
    try:
        items.append("a")
        with caplog.at_level(logging.WARNING, "test.journal"):
            assert await items.flush()
        assert commit.batches == [["a"]]  # decoded and committed here
        assert "committing here: no writer" in caplog.text
        forward.fail = None
        items.append("b")
        assert await items.flush()
        assert forward.handed == [[b"b"]]  # handed over again once it can take them
        assert commit.batches == [["a"]]
    finally:
        await items.close()


async def test_a_batch_the_other_process_failed_to_commit_stays_pending_and_is_retried(
    tmp_path: Path,
) -> None:
    commit, forward = Recorder(), Forward()
    forward.fail = RuntimeError("database down")
    items = forwarding(tmp_path, commit, forward)
    await items.start()
    try:
        items.append("a")
        assert not await items.flush()
        assert items.pending == 1
        assert len(os.listdir(tmp_path)) == 2  # kept, and the new segment
        items.append("b")
        forward.fail = None
        assert await items.flush()
        assert forward.handed == [[b"a", b"b"]]
        assert commit.batches == []
    finally:
        await items.close()


async def test_lines_appended_while_a_batch_fails_stay_behind_it(tmp_path: Path) -> None:
    commit, forward = Recorder(), Forward()
    items = forwarding(tmp_path, commit, forward)
    await items.start()
    try:
        items.append("a")
        items.append("b")
        forward.fail = RuntimeError("database down")
        forward.meanwhile = lambda: items.append("c")
        assert not await items.flush()
        assert items.pending == 3
        forward.fail, forward.meanwhile = None, lambda: None
        assert await items.flush()
        assert forward.handed == [[b"a", b"b", b"c"]]
        assert items.pending == 0
    finally:
        await items.close()


async def test_lines_being_handed_over_count_as_pending_until_committed(tmp_path: Path) -> None:
    # A receipt flushes only when something is pending: a batch on its way to the writer
    # must not look committed. Pieces of two lines each ("a\n" is two bytes).
    commit, forward = Recorder(), Forward()
    items = forwarding(tmp_path, commit, forward, piece_bytes=4)
    seen: list[int] = []
    forward.meanwhile = lambda: seen.append(items.pending)
    await items.start()
    try:
        for word in "abcde":
            items.append(word)
        assert await items.flush()
        assert seen == [5, 3, 1] and items.pending == 0
        for word in "fgh":
            items.append(word)
        forward.fail = RuntimeError("database down")
        assert not await items.flush()
        assert seen[-1] == 3 and items.pending == 3  # back in line, counted once
    finally:
        forward.fail = None
        await items.close()


def test_split_lines_drops_the_last_newline_only() -> None:
    assert split_lines(bytearray(b"a\nb\n")) == [b"a", b"b"]
    assert split_lines(b"a\n\nb\n") == [b"a", b"", b"b"]
    assert split_lines(b"") == []


async def test_a_dead_processs_segment_is_replayed_through_forward_without_its_bad_lines(
    tmp_path: Path,
) -> None:
    (tmp_path / "journal-999999-0-deadbeef.jsonl").write_bytes(b"a\nb\n{bad\nc\nd-cut")
    commit, forward = Recorder(), Forward()
    items = forwarding(tmp_path, commit, forward)
    await items.start()
    try:
        assert items.replayed == 3
        assert forward.handed == [[b"a", b"b", b"c"]]
        assert commit.batches == []
    finally:
        await items.close()
    assert os.listdir(tmp_path) == []


async def test_lines_handed_over_are_decoded_and_committed_skipping_bad_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    commit = Recorder()
    commit.release.set()
    items = forwarding(tmp_path, commit, None)  # the writer's side never starts its journal
    with caplog.at_level(logging.ERROR, "test.journal"):
        await items.commit_lines([b"a", b"not a word", b"b"])
    assert commit.batches == [["a", "b"]]
    assert "skipping unreadable line 2 of a batch handed over" in caplog.text
    await items.commit_lines([b"{"])  # nothing readable: nothing committed
    assert commit.batches == [["a", "b"]]
