"""A streamed response's body, read as it arrives: its lines, a list a read, each read due
within a wait and the whole body by a deadline.

The two bounds are kept by one timer a stream. A timeout around each read
(``asyncio.timeout_at``) schedules and cancels a timer a read, about 3.5 µs, and a model's
events arrive a read each: that was the largest part of what an event cost the event loop
(docs/benchmarks.md). Here the timer is set when a read starts and none is pending, and when
it fires it looks at the read under way: moved on to that read's due time if it began later,
left off if no read is under way (the stream is waiting on its own client, not the
upstream), the read cancelled if it is due. The read then raises ``TimeoutError``, as a
timeout's would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any, Protocol


class Chunk(Protocol):
    def to_bytes(self) -> bytes: ...


class Reader(Protocol):
    async def read_chunk(self) -> Chunk | None: ...


async def body_lines(
    reader: Reader, wait: float, deadline: float
) -> AsyncGenerator[list[bytes], None]:
    """The body's complete lines as each read brings them (the last, unterminated line at
    the end); each read due within ``wait`` seconds, all of them by ``deadline``
    (``time.monotonic``)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + (deadline - time.monotonic())
    reading: asyncio.Task[Any] | None = None  # the task whose read is under way
    began = 0.0
    expired = False
    timer: asyncio.TimerHandle | None = None

    def check() -> None:
        nonlocal timer, expired
        timer = None
        if reading is None:
            return  # the next read sets it again
        due = min(end, began + wait)
        if loop.time() < due:
            timer = loop.call_at(due, check)
        else:
            expired = True
            reading.cancel()

    pending = b""
    try:
        while True:
            began = loop.time()
            # The task that reads now: a stream's first read may be made by another.
            task = reading = asyncio.current_task(loop)
            if timer is None:
                timer = loop.call_at(min(end, began + wait), check)
            try:
                chunk = await reader.read_chunk()
            except asyncio.CancelledError:
                if expired and task is not None and task.uncancel() == 0:
                    raise TimeoutError from None
                raise
            finally:
                reading = None
            if chunk is None:
                break
            lines = (pending + chunk.to_bytes()).split(b"\n")
            pending = lines.pop()
            if lines:  # else a line still coming
                yield lines
        if pending:
            yield [pending]
    finally:
        if timer is not None:
            timer.cancel()
