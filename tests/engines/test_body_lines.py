"""A streamed body's lines from arbitrary chunks, each read due within a wait, all by a
deadline, with one timer a stream."""

from __future__ import annotations

import asyncio
import time

import pytest

from modelgrid.engines.body_lines import body_lines

WAIT = 0.05  # seconds a read may take in the tests that time out


class _Chunk:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def to_bytes(self) -> bytes:
        return self.data


class _Reader:
    """Hands out the given chunks, each after ``delay`` seconds, then None (the body's end);
    ``stall`` waits forever instead of ending."""

    def __init__(self, chunks: list[bytes], stall: bool = False, delay: float = 0.0) -> None:
        self.chunks = [_Chunk(c) for c in chunks]
        self.stall = stall
        self.delay = delay
        self.reads = 0

    async def read_chunk(self) -> _Chunk | None:
        self.reads += 1
        if self.chunks:
            if self.delay:
                await asyncio.sleep(self.delay)
            return self.chunks.pop(0)
        if self.stall:
            await asyncio.Event().wait()
        return None


async def _collect(reader: _Reader, wait: float = 5.0, within: float = 60.0) -> list[bytes]:
    deadline = time.monotonic() + within
    return [line async for lines in body_lines(reader, wait, deadline) for line in lines]


def test_lines_split_across_chunks_and_kept_whole() -> None:
    chunks = [b'data: {"a"', b":1}\n\nda", b"ta: [DONE]\n", b"\n"]
    lines = asyncio.run(_collect(_Reader(chunks)))
    assert lines == [b'data: {"a":1}', b"", b"data: [DONE]", b""]


def test_a_read_brings_its_lines_at_once() -> None:
    async def reads() -> list[list[bytes]]:
        reader = _Reader([b"data: a\n\ndata: b\n\n", b"data: c"])
        return [lines async for lines in body_lines(reader, 5.0, time.monotonic() + 60)]

    assert asyncio.run(reads()) == [[b"data: a", b"", b"data: b", b""], [b"data: c"]]


def test_last_unterminated_line_is_not_lost() -> None:
    assert asyncio.run(_collect(_Reader([b"data: x\n", b"data: y"]))) == [b"data: x", b"data: y"]


def test_a_stalled_body_times_out() -> None:
    with pytest.raises(TimeoutError):
        asyncio.run(_collect(_Reader([b"data: x\n"], stall=True), wait=WAIT))


def test_reads_each_within_the_wait_still_end_at_the_deadline() -> None:
    reader = _Reader([b"data: x\n"] * 100, delay=WAIT / 2)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        asyncio.run(_collect(reader, wait=WAIT, within=4 * WAIT))
    # Cut by the deadline: not by the wait (sooner), nor after all 100 reads (2.5 s).
    assert 4 * WAIT <= time.monotonic() - started < 1.0


def test_a_steady_stream_longer_than_the_wait_is_not_cut() -> None:
    # The timer set at the first read fires while later reads are under way: it moves on.
    reader = _Reader([b"data: x\n"] * 8, delay=WAIT / 2)
    assert asyncio.run(_collect(reader, wait=WAIT)) == [b"data: x"] * 8


def test_time_spent_by_the_consumer_is_not_the_upstream_s() -> None:
    # A slow client holds the stream between reads: only a read's own wait counts.
    async def slow_consumer() -> list[bytes]:
        got = []
        async for lines in body_lines(_Reader([b"a\n", b"b\n"]), WAIT, time.monotonic() + 60):
            got += lines
            await asyncio.sleep(3 * WAIT)
        return got

    assert asyncio.run(slow_consumer()) == [b"a", b"b"]


def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    async def cancelled() -> None:
        task = asyncio.create_task(_collect(_Reader([], stall=True), wait=10.0))
        await asyncio.sleep(0.01)
        task.cancel()
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancelled())


def test_a_stream_closed_early_leaves_no_timer_behind() -> None:
    async def closed_early() -> bool:
        lines = body_lines(_Reader([b"a\n"], stall=True), WAIT, time.monotonic() + 60)
        assert await anext(lines) == [b"a"]
        await lines.aclose()
        # Beyond the wait, this task is not cancelled by the stream's timer.
        await asyncio.sleep(3 * WAIT)
        return True

    assert asyncio.run(closed_early())


def test_the_task_that_reads_is_the_one_cancelled() -> None:
    # A stream's first read may be made by one task (the request's) and the rest by another.
    async def two_tasks() -> None:
        lines = body_lines(_Reader([b"a\n"], stall=True), WAIT, time.monotonic() + 60)
        assert await asyncio.create_task(anext(lines)) == [b"a"]
        await asyncio.create_task(anext(lines))

    with pytest.raises(TimeoutError):
        asyncio.run(two_tasks())
