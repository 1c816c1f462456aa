"""Gives the C allocator's free pages back to the system, every minute of a server's life.

glibc's malloc keeps the memory a process frees for its next allocations, and hands back
only what lies at the top of its heap. Under sustained load the server's resident set crept
up about 31 bytes a request while malloc's bytes in use stayed flat: the growth was free
memory malloc kept between live blocks (the batches of rows, statements and responses come
and go in sizes that never quite fit again), and ``malloc_trim(0)``, which returns every
wholly free page wherever it lies, gave back 19–28 MB of it at a call (docs/benchmarks.md,
memory under sustained load). Where the C library has no ``malloc_trim`` (musl, macOS),
nothing runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import time
from collections.abc import Callable

log = logging.getLogger("modelgrid.allocator")

Trim = Callable[[], bool]


def malloc_trim() -> Trim | None:
    """glibc's ``malloc_trim(0)``, true when it gave memory back; None where there is none."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: bool(trim(0))


class Trimmer:
    """Calls ``trim`` every ``seconds`` in a worker thread (ctypes lets go of the GIL for
    the call, so requests go on meanwhile)."""

    def __init__(self, seconds: float, trim: Trim | None = None) -> None:
        self.seconds = seconds
        self._trim = trim if trim is not None else malloc_trim()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.seconds > 0 and self._trim is not None:
            self._task = asyncio.create_task(self._run(), name="malloc-trim")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        assert self._trim is not None
        while True:
            await asyncio.sleep(self.seconds)
            started = time.perf_counter()
            try:
                released = await asyncio.to_thread(self._trim)
            except Exception:  # never worth more than a line in the log
                log.exception("malloc_trim failed")
                continue
            log.debug(
                "malloc_trim",
                extra={"released": released, "ms": (time.perf_counter() - started) * 1000},
            )
