"""The thinnest Starlette proxy on aiohttp: the floor a gateway built this way can reach.

``python bare_proxy_aiohttp.py PORT UPSTREAM`` forwards ``POST /v1/chat/completions`` to
``UPSTREAM/chat/completions`` (UPSTREAM up to and including ``/v1``; else ``$UPSTREAM``) over one
pooled session, passing streamed answers through chunk by chunk. No auth, no parsing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8001
UPSTREAM = (sys.argv[2] if len(sys.argv) > 2 else os.environ["UPSTREAM"]).rstrip("/")
URL = f"{UPSTREAM}/chat/completions"
session: aiohttp.ClientSession


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    global session
    # As many connections as a ModelGrid deployment's default (max_connections): a stream
    # holds one for as long as it lasts.
    connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=300)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(60)) as s:
        session = s
        yield


async def relay(upstream: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.content.iter_any():
            yield chunk
    finally:
        upstream.release()


async def chat(request: Request) -> Response:
    body = await request.body()
    headers = {"Content-Type": "application/json"}
    upstream = await session.post(URL, data=body, headers=headers)
    media_type = upstream.headers.get("Content-Type")
    if b'"stream":true' in body or b'"stream": true' in body:
        return StreamingResponse(relay(upstream), upstream.status, media_type=media_type)
    async with upstream:
        return Response(await upstream.read(), upstream.status, media_type=media_type)


app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])], lifespan=lifespan)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning", access_log=False)
