"""Gives the C allocator's free pages back to the system, every minute of a server's life.

glibc's malloc keeps the memory a process frees for its next allocations, and hands back
only what lies at the top of its heap. Under sustained load the server's resident set crept
up about 31 bytes a request while malloc's bytes in use stayed flat: the growth was free
memory malloc kept between live blocks (the batches of rows, statements and responses come
and go in sizes that never quite fit again), and ``malloc_trim(0)``, which returns every
wholly free page wherever it lies, gave back 19–28 MB of it at a call (docs/benchmarks.md,
memory under sustained load). Where the C library has no ``malloc_trim`` (musl, macOS),
nothing runs.

Large blocks are the other half. glibc serves a block from mmap (its own pages, given back
when freed) only above a threshold that starts at 128 KB and rises, up to 32 MB, to the size
of each mmapped block freed; after the first large batch has come and gone, the next ones
(a flush's rows, the provenance index's arrays, large bodies) come from the heap, and leave
holes there. ``fix_mmap_threshold`` sets the threshold, which also stops it moving
(docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import time
from collections.abc import Callable, Mapping

log = logging.getLogger("modelgrid.allocator")

Trim = Callable[[], bool]
M_MMAP_THRESHOLD = -3  # glibc's malloc.h


def fix_mmap_threshold(size: int, environ: Mapping[str, str] = os.environ) -> bool:
    """Blocks of ``size`` bytes and more from mmap from now on, the threshold no longer moving
    (0: glibc's default), unless ``MALLOC_MMAP_THRESHOLD_`` is in the environment; true when
    it was set. Where the C library has no ``mallopt``, nothing is done."""
    if size <= 0 or "MALLOC_MMAP_THRESHOLD_" in environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done: int = mallopt(M_MMAP_THRESHOLD, size)
    return done == 1


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
