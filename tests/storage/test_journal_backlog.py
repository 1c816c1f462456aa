"""The journal's bounded backlog: the bytes of lines not yet committed, ``full`` at the bound
and ``room()`` waiting for a commit to bring them under it, with the lines handed to another
process and without; and a backlog handed over in pieces of a bounded size."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from modelgrid.storage.journal import Journal, piece_end, split_lines

from .test_journal import Recorder, forwarding

pytestmark = pytest.mark.anyio


class SlowForward:
    """A ``forward`` that takes each batch only when ``release`` is set, or fails as told."""

    def __init__(self) -> None:
        self.handed: list[list[bytes]] = []
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def __call__(self, lines: memoryview) -> None:
        self.entered.set()
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        self.handed.append(split_lines(lines))


class CountingForward:
    """A ``forward`` that records each piece, and fails the ``fail_at``-th (from 1) once."""

    def __init__(self, fail_at: int = 0) -> None:
        self.handed: list[list[bytes]] = []
        self.calls = 0
        self.fail_at = fail_at

    async def __call__(self, lines: memoryview) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("database down")
        self.handed.append(split_lines(lines))


def bounded(
    directory: Path,
    commit: Recorder,
    forward: SlowForward | CountingForward | None,
    bound: int,
    piece: int = 1 << 20,
) -> Journal[str]:
    return forwarding(directory, commit, forward, max_backlog=bound, piece_bytes=piece)


async def still_waiting(task: asyncio.Future[None]) -> bool:
    for _ in range(5):
        await asyncio.sleep(0)
    return not task.done()


async def test_the_backlog_is_full_until_a_commit_brings_it_under_its_bound(
    tmp_path: Path,
) -> None:
    commit, forward = Recorder(), SlowForward()
    items = bounded(tmp_path, commit, forward, bound=6)
    await items.start()
    try:
        items.append("aa")
        assert (items.backlog, items.full) == (3, False)  # each line with its newline
        await items.room()  # under the bound: at once
        items.append("bb")
        assert (items.backlog, items.full) == (6, True)
        waiting = asyncio.ensure_future(items.room())
        flushing = asyncio.ensure_future(items.flush())
        await forward.entered.wait()
        items.append("c")  # a request served meanwhile is recorded: appends never wait
        assert items.backlog == 8
        assert await still_waiting(waiting)  # the batch handed over is not committed yet
        forward.release.set()
        assert await flushing
        await asyncio.wait_for(waiting, 1)
        assert (items.backlog, items.full) == (2, False)  # "c" stays, behind the batch
        assert forward.handed == [[b"aa", b"bb"]]
    finally:
        forward.release.set()
        await items.close()
    assert items.backlog == 0


async def test_a_failed_commit_leaves_the_backlog_full(tmp_path: Path) -> None:
    commit, forward = Recorder(), SlowForward()
    forward.release.set()
    forward.fail = RuntimeError("database down")
    items = bounded(tmp_path, commit, forward, bound=4)
    await items.start()
    try:
        items.append("abcd")
        waiting = asyncio.ensure_future(items.room())
        assert not await items.flush()
        assert (items.backlog, items.full) == (5, True)
        assert await still_waiting(waiting)
        forward.fail = None
        assert await items.flush()
        await asyncio.wait_for(waiting, 1)
        assert items.backlog == 0
    finally:
        await items.close()


async def test_committed_here_the_backlog_counts_the_same(tmp_path: Path) -> None:
    commit = Recorder()
    items = bounded(tmp_path, commit, None, bound=4)
    await items.start()
    try:
        items.append("ab")
        items.append("cd")
        assert (items.backlog, items.full) == (6, True)
        flushing = asyncio.ensure_future(items.flush())
        await commit.entered.wait()
        items.append("e")
        commit.release.set()
        assert await flushing
        assert (items.backlog, items.full) == (2, False)
        assert commit.batches == [["ab", "cd"]]
    finally:
        await items.close()


async def test_a_replayed_segment_counts_until_it_is_committed(tmp_path: Path) -> None:
    (tmp_path / "journal-999999-0-deadbeef.jsonl").write_bytes(b"ab\ncd\n{bad\n")
    commit, forward = Recorder(), SlowForward()
    items = bounded(tmp_path, commit, forward, bound=1)
    starting = asyncio.ensure_future(items.start())
    await forward.entered.wait()
    assert items.backlog == 6  # the two good lines; the bad one is skipped
    forward.release.set()
    await starting
    try:
        assert (items.backlog, items.full) == (0, False)
    finally:
        await items.close()


async def test_without_a_bound_the_backlog_is_never_full(tmp_path: Path) -> None:
    commit = Recorder()
    items = bounded(tmp_path, commit, None, bound=0)
    await items.start()
    try:
        for n in range(100):
            items.append(f"w{n}")
        assert items.backlog > 0
        assert not items.full
        await items.room()
    finally:
        commit.release.set()
        await items.close()


def test_a_piece_ends_after_a_whole_line() -> None:
    held = bytearray(b"aa\nbb\ncc\ndddddddd\ne\n")
    assert piece_end(held, 0, 6) == 6  # "aa", "bb": both fit
    assert piece_end(held, 6, 6) == 9  # "cc": "dddddddd" would not fit beside it
    assert piece_end(held, 9, 6) == 18  # a line longer than a piece goes whole
    assert piece_end(held, 18, 6) == len(held)


async def test_a_backlog_goes_in_pieces_each_making_room_as_it_is_committed(
    tmp_path: Path,
) -> None:
    forward = CountingForward()
    items = bounded(tmp_path, Recorder(), forward, bound=7, piece=6)
    await items.start()
    try:
        for word in ("aa", "bb", "cc", "dddddddd", "e"):
            items.append(word)
        assert await items.flush()
        assert forward.handed == [[b"aa", b"bb"], [b"cc"], [b"dddddddd"], [b"e"]]
        assert (items.backlog, items.pending) == (0, 0)
    finally:
        await items.close()
    assert os.listdir(tmp_path) == []


async def test_after_a_piece_fails_the_rest_waits_in_front_of_newer_lines(
    tmp_path: Path,
) -> None:
    forward = CountingForward(fail_at=2)
    items = bounded(tmp_path, Recorder(), forward, bound=0, piece=6)
    await items.start()
    try:
        for word in ("aa", "bb", "cc", "dd"):
            items.append(word)
        assert not await items.flush()
        assert forward.handed == [[b"aa", b"bb"]]  # committed; the second piece failed
        assert (items.backlog, items.pending) == (6, 2)
        assert len(os.listdir(tmp_path)) == 2  # its segment stays until all of it is in
        items.append("ee")
        assert await items.flush()
        assert forward.handed[1:] == [[b"cc", b"dd"], [b"ee"]]
        assert (items.backlog, items.pending) == (0, 0)
    finally:
        await items.close()
    assert os.listdir(tmp_path) == []
