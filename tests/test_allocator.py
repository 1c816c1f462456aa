"""The allocator's trimmer: glibc's malloc_trim found and called, on a schedule, off the
event loop's thread; failures logged, never raised."""

from __future__ import annotations

import asyncio
import ctypes
import platform
import threading

import pytest

from modelgrid.allocator import Trimmer, malloc_trim

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_malloc_trim_is_glibcs_where_there_is_glibc() -> None:
    trim = malloc_trim()
    if platform.libc_ver()[0] != "glibc":
        assert trim is None
        return
    assert trim is not None
    # Freed blocks in the middle of the heap: something for the trim to give back.
    kept = [ctypes.create_string_buffer(4096 + i % 4096) for i in range(20_000)]
    del kept[::2]
    assert isinstance(trim(), bool)


async def test_the_trimmer_trims_every_interval_off_the_loops_thread() -> None:
    threads: list[threading.Thread] = []
    three = asyncio.Event()

    def trim() -> bool:
        threads.append(threading.current_thread())
        if len(threads) == 3:
            three.set()
        return True

    trimmer = Trimmer(0.01, trim)
    trimmer.start()
    await asyncio.wait_for(three.wait(), 10)
    await trimmer.close()
    assert threading.main_thread() not in threads


async def test_a_failing_trim_is_logged_and_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0
    twice = asyncio.Event()

    def trim() -> bool:
        nonlocal calls
        calls += 1
        if calls == 2:
            twice.set()
        raise OSError("no")

    trimmer = Trimmer(0.01, trim)
    trimmer.start()
    await asyncio.wait_for(twice.wait(), 10)
    await trimmer.close()
    assert "malloc_trim failed" in caplog.text


async def test_zero_seconds_never_trims() -> None:
    def trim() -> bool:
        raise AssertionError("trimmed")

    trimmer = Trimmer(0, trim)
    trimmer.start()
    await asyncio.sleep(0.05)
    await trimmer.close()
