"""The handlers' shared steps, on their own: reading a request's body."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message

from modelgrid.routes import read_body, read_json

pytestmark = pytest.mark.anyio


def request_of(messages: list[Message]) -> Request:
    given: Iterator[Message] = iter(messages)

    async def receive() -> Message:
        return next(given)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    return Request(scope, receive)


async def test_a_body_in_pieces_is_read_whole() -> None:
    pieces = [b'{"model": ', b'"m", "n"', b": 2}"]
    request = request_of(
        [{"type": "http.request", "body": p, "more_body": i < 2} for i, p in enumerate(pieces)]
    )
    assert await read_body(request) == b'{"model": "m", "n": 2}'


async def test_an_empty_body_and_a_json_one() -> None:
    assert await read_body(request_of([{"type": "http.request"}])) == b""
    message: Message = {"type": "http.request", "body": b"[1, 2]", "more_body": False}
    assert await read_json(request_of([message])) == [1, 2]


async def test_a_client_that_leaves_mid_body_is_a_disconnect() -> None:
    request = request_of(
        [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}]
    )
    with pytest.raises(ClientDisconnect):
        await read_body(request)
