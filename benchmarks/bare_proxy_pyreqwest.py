"""The thinnest Starlette proxy on pyreqwest, the client ModelGrid's upstream engine uses: the
floor for a gateway built on it.

``python bare_proxy_pyreqwest.py PORT UPSTREAM`` forwards ``POST /v1/chat/completions`` to
``UPSTREAM/chat/completions`` (UPSTREAM up to and including ``/v1``; else ``$UPSTREAM``) over one
pooled client, passing streamed answers through chunk by chunk. No auth, no parsing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.request import StreamRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8001
UPSTREAM = (sys.argv[2] if len(sys.argv) > 2 else os.environ["UPSTREAM"]).rstrip("/")
URL = f"{UPSTREAM}/chat/completions"
HEADERS = {"Content-Type": "application/json"}
client: Client


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    global client
    # As many connections as a ModelGrid deployment's default (max_connections): a stream
    # holds one for as long as it lasts.
    async with ClientBuilder().max_connections(256).build() as c:
        client = c
        yield


async def relay(request: StreamRequest) -> AsyncIterator[bytes]:
    async with request as upstream:
        while (chunk := await upstream.body_reader.read_chunk()) is not None:
            yield chunk.to_bytes()


async def chat(request: Request) -> Response:
    body = await request.body()
    post = client.post(URL).headers(HEADERS).body_bytes(body)
    if b'"stream":true' in body or b'"stream": true' in body:
        streamed = post.streamed_read_buffer_limit(0).build_streamed()
        return StreamingResponse(relay(streamed), media_type="text/event-stream")
    upstream = await post.build().send()
    media_type = upstream.get_header("content-type")
    return Response((await upstream.bytes()).to_bytes(), upstream.status, media_type=media_type)


app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])], lifespan=lifespan)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning", access_log=False)
