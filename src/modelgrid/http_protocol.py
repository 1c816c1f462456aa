"""uvicorn's HTTP/1.1 protocol (httptools), sending a response's head and body in one write.

uvicorn writes a response's head when the app starts the response and its body when the app
sends it: two system calls, two TCP segments, and on the other end two wake-ups of the client
for one answer. Here the head waits for the write that follows it (the body, or a stream's
first chunk), and goes out with it; if nothing follows within the event loop's turn (a stream
whose first chunk is slow, a response with no body), it goes out alone at the end of the turn.
Through the server this measured +2–3% throughput and −1.5% CPU a request (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeadWithBody:
    """A transport that holds back a write starting a response until the next write, or the
    end of the event loop's turn, and then sends both together. Everything else is the
    transport's own."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held = b""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held:
            data, self._held = b"".join((self._held, data)), b""  # any bytes-like body
            self._transport.write(data)
        elif isinstance(data, bytes) and data.startswith(b"HTTP/"):  # uvicorn's heads: bytes
            # A body chunk that happens to start so is held too: it still goes out in order,
            # at the latest at the end of this turn.
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        if self._held:
            data, self._held = self._held, b""
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # HeadWithBody has what uvicorn uses of a transport, the rest by delegation.
        super().connection_made(cast(asyncio.Transport, HeadWithBody(transport, self.loop)))
