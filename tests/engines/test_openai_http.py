"""The upstream engine's own parts: SSE lines from arbitrary chunks, errors named plainly.

Requests through it against real servers (llama.cpp's, another ModelGrid, the fault server)
are in tests/test_upstreams.py and tests/test_real_upstreams.py."""

from __future__ import annotations

import asyncio
import time

import pytest

from modelgrid.engines.openai_http import _describe, _lines


class _Chunk:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def to_bytes(self) -> bytes:
        return self.data


class _Reader:
    """Hands out the given chunks, then None (the body's end); ``stall`` waits forever."""

    def __init__(self, chunks: list[bytes], stall: bool = False) -> None:
        self.chunks = [_Chunk(c) for c in chunks]
        self.stall = stall

    async def read_chunk(self) -> _Chunk | None:
        if self.chunks:
            return self.chunks.pop(0)
        if self.stall:
            await asyncio.Event().wait()
        return None


async def _collect(reader: _Reader, wait: float = 5.0) -> list[bytes]:
    return [line async for line in _lines(reader, wait, time.monotonic() + 60)]


def test_lines_split_across_chunks_and_kept_whole() -> None:
    chunks = [b'data: {"a"', b":1}\n\nda", b"ta: [DONE]\n", b"\n"]
    lines = asyncio.run(_collect(_Reader(chunks)))
    assert lines == [b'data: {"a":1}', b"", b"data: [DONE]", b""]


def test_last_unterminated_line_is_not_lost() -> None:
    assert asyncio.run(_collect(_Reader([b"data: x\n", b"data: y"]))) == [b"data: x", b"data: y"]


def test_a_stalled_body_times_out() -> None:
    with pytest.raises(TimeoutError):
        asyncio.run(_collect(_Reader([b"data: x\n"], stall=True), wait=0.05))


def test_errors_are_named_without_internals() -> None:
    assert _describe(TimeoutError()) == "timed out"
    assert _describe(ValueError()) == "ValueError"
