"""uvicorn's HTTP/1.1 protocol (httptools), sending what a response writes in one turn of the
event loop as one write.

uvicorn writes a response's head when the app starts the response and each piece of body when
the app sends it: for a JSON answer two system calls and two TCP segments, and on the other
end two wake-ups of the client; for a stream, one of each per event, even when an upstream's
events arrive together and go out in the same turn. Here writes are gathered and go out
together when the response completes, at the end of the turn, or before the connection
closes, whichever comes first: never later than the turn they were made in. Head and body
together measured +2–3% throughput and −1.5% CPU a request; a stream's events together
measured in docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class Coalescing:
    """A transport that holds writes until ``flush``, which the end of the event loop's turn
    calls at the latest, and sends them as one. Everything else is the transport's own."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes | bytearray | memoryview] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held:
            self._held.append(data)
        else:
            self._held = [data]
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        if self._held:
            held, self._held = self._held, []
            if not self._transport.is_closing():
                self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # Coalescing has what uvicorn uses of a transport, the rest by delegation.
        super().connection_made(cast(asyncio.Transport, Coalescing(transport, self.loop)))

    def on_response_complete(self) -> None:
        # A complete response goes out now, not at the end of the turn: the request's task
        # may go on (settling, the audit leaf) before it yields.
        cast(Coalescing, self.transport).flush()
        super().on_response_complete()
