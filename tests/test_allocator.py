"""The allocator's trimmer: glibc's malloc_trim found and called, on a schedule, off the
event loop's thread; failures logged, never raised. Its fixed mmap threshold."""

from __future__ import annotations

import asyncio
import ctypes
import platform
import subprocess
import sys
import threading

import pytest

from modelgrid.allocator import Trimmer, fix_mmap_threshold, malloc_trim

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


LARGE_BLOCK = """
import ctypes, sys
from modelgrid.allocator import fix_mmap_threshold

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks",
        "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
print(fix_mmap_threshold(int(sys.argv[1]), {}))
libc.free(libc.malloc(4 << 20))  # a large block freed: glibc's own threshold rises to 4 MB
before = libc.mallinfo2().hblks
block = libc.malloc(256 << 10)
print(libc.mallinfo2().hblks - before)  # 1: the block was mmapped; 0: it came from the heap
"""


def large_block(threshold: int) -> list[str]:
    cmd = [sys.executable, "-c", LARGE_BLOCK, str(threshold)]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_a_fixed_mmap_threshold_keeps_large_blocks_out_of_the_heap() -> None:
    assert large_block(65536) == ["True", "1"]
    assert large_block(0) == ["False", "0"]  # glibc's threshold moved past the block


def test_the_environments_mmap_threshold_wins() -> None:
    assert fix_mmap_threshold(65536, {"MALLOC_MMAP_THRESHOLD_": "131072"}) is False
