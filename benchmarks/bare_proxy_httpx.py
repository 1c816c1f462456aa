"""The thinnest Starlette proxy on httpx: the floor a gateway built this way can reach.

``python bare_proxy_httpx.py PORT UPSTREAM`` forwards ``POST /v1/chat/completions`` to
``UPSTREAM/chat/completions`` (UPSTREAM up to and including ``/v1``; else ``$UPSTREAM``) over one
pooled client, passing streamed answers through chunk by chunk. No auth, no parsing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8001
UPSTREAM = (sys.argv[2] if len(sys.argv) > 2 else os.environ["UPSTREAM"]).rstrip("/")
URL = f"{UPSTREAM}/chat/completions"
client: httpx.AsyncClient


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    global client
    # httpx keeps only 20 idle connections by default: at 64 concurrent requests the rest would
    # be closed after each use and reopened, which measures TCP setup rather than the client.
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=300)
    async with httpx.AsyncClient(limits=limits, timeout=60) as c:
        client = c
        yield


async def chat(request: Request) -> Response:
    body = await request.body()
    headers = {"Content-Type": "application/json"}
    upstream_request = client.build_request("POST", URL, content=body, headers=headers)
    upstream = await client.send(upstream_request, stream=True)
    media_type = upstream.headers.get("Content-Type")
    if b'"stream":true' in body or b'"stream": true' in body:
        return StreamingResponse(
            upstream.aiter_raw(),
            upstream.status_code,
            media_type=media_type,
            background=BackgroundTask(upstream.aclose),
        )
    try:
        return Response(await upstream.aread(), upstream.status_code, media_type=media_type)
    finally:
        await upstream.aclose()


app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])], lifespan=lifespan)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning", access_log=False)
