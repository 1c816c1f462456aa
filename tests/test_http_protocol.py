"""A response's head and body in one write (http_protocol.py); the server's own tests (every
test that talks to ``modelgrid serve``) run on this protocol."""

from __future__ import annotations

import asyncio

import pytest

from modelgrid.http_protocol import HeadWithBody

pytestmark = pytest.mark.anyio

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recorder:
    """What uvicorn sees of a transport, recording what is written."""

    def __init__(self) -> None:
        self.writes: list[bytes | memoryview] = []
        self.closed = False

    def write(self, data: bytes | memoryview) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"extra:{name}"


async def next_turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_a_head_goes_out_with_the_body_that_follows_it() -> None:
    recorder = Recorder()
    transport = HeadWithBody(recorder, asyncio.get_running_loop())
    transport.write(HEAD)
    assert recorder.writes == []
    transport.write(memoryview(b"{}"))  # a body may be any bytes-like object
    assert recorder.writes == [HEAD + b"{}"]
    await next_turn()  # the end-of-turn flush finds nothing left
    assert recorder.writes == [HEAD + b"{}"]


async def test_a_head_with_nothing_after_it_goes_out_at_the_end_of_the_turn() -> None:
    recorder = Recorder()
    transport = HeadWithBody(recorder, asyncio.get_running_loop())
    transport.write(HEAD)
    await next_turn()
    assert recorder.writes == [HEAD]
    transport.write(b"data: 1\n\n")  # a stream's chunks after it go as they come
    transport.write(memoryview(b"data: 2\n\n"))
    assert recorder.writes == [HEAD, b"data: 1\n\n", memoryview(b"data: 2\n\n")]


async def test_closing_sends_a_held_head_first() -> None:
    recorder = Recorder()
    transport = HeadWithBody(recorder, asyncio.get_running_loop())
    transport.write(HEAD)
    transport.close()
    assert recorder.writes == [HEAD] and recorder.closed


async def test_a_head_held_for_a_connection_gone_meanwhile_is_dropped() -> None:
    recorder = Recorder()
    transport = HeadWithBody(recorder, asyncio.get_running_loop())
    transport.write(HEAD)
    recorder.closed = True  # the client went away
    await next_turn()
    assert recorder.writes == []


async def test_the_rest_of_the_transport_is_the_transport_s_own() -> None:
    recorder = Recorder()
    transport = HeadWithBody(recorder, asyncio.get_running_loop())
    assert transport.get_extra_info("peername") == "extra:peername"
    assert transport.is_closing() is False
