"""What a response writes in one turn goes out as one write (http_protocol.py); the server's
own tests (every test that talks to ``modelgrid serve``) run on this protocol."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.server import ServerState

from modelgrid.http_protocol import Coalescing, HttpProtocol

pytestmark = pytest.mark.anyio

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recorder:
    """What uvicorn sees of a transport, recording what is written."""

    def __init__(self) -> None:
        self.writes: list[bytes | bytearray | memoryview] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def next_turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_the_writes_of_one_turn_go_out_together_at_its_end() -> None:
    recorder = Recorder()
    transport = Coalescing(recorder, asyncio.get_running_loop())
    transport.write(HEAD)
    transport.write(memoryview(b"{}"))  # a body may be any bytes-like object
    assert recorder.writes == []
    await next_turn()
    assert recorder.writes == [HEAD + b"{}"]


async def test_the_writes_of_later_turns_go_out_in_their_own() -> None:
    recorder = Recorder()
    transport = Coalescing(recorder, asyncio.get_running_loop())
    transport.write(HEAD)
    await next_turn()
    transport.write(b"data: 1\n\n")  # a stream's events that arrive apart go apart
    await next_turn()
    transport.write(b"data: 2\n\n")
    await next_turn()
    assert recorder.writes == [HEAD, b"data: 1\n\n", b"data: 2\n\n"]


async def test_closing_sends_what_is_held_first() -> None:
    recorder = Recorder()
    transport = Coalescing(recorder, asyncio.get_running_loop())
    transport.write(HEAD)
    transport.close()
    assert recorder.writes == [HEAD] and recorder.closed


async def test_what_is_held_for_a_connection_gone_meanwhile_is_dropped() -> None:
    recorder = Recorder()
    transport = Coalescing(recorder, asyncio.get_running_loop())
    transport.write(HEAD)
    recorder.closed = True  # the client went away
    await next_turn()
    assert recorder.writes == []


async def test_the_rest_of_the_transport_is_the_transport_s_own() -> None:
    recorder = Recorder()
    transport = Coalescing(recorder, asyncio.get_running_loop())
    assert transport.get_extra_info("peername") == ("127.0.0.1", 50000)
    assert transport.is_closing() is False


async def test_a_complete_response_goes_out_before_its_task_yields() -> None:
    # uvicorn's own protocol around the transport: the response completes, and its three
    # writes (head, two chunks) are one write already, though the task has not yielded.
    recorder = Recorder()
    seen: list[list[bytes | bytearray | memoryview]] = []
    done = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"data: 2\n\n"})
        seen.append(list(recorder.writes))
        done.set()

    config = Config(app, http=HttpProtocol, lifespan="off", access_log=False)
    config.load()
    protocol = HttpProtocol(config, ServerState(), {}, asyncio.get_running_loop())
    protocol.connection_made(recorder)  # type: ignore[arg-type]
    protocol.data_received(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n")
    await asyncio.wait_for(done.wait(), 5)
    assert len(seen[0]) == 1
    written = bytes(seen[0][0])
    assert written.startswith(b"HTTP/1.1 200 OK\r\n")
    assert written.endswith(b"9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n")
    protocol.connection_lost(None)
