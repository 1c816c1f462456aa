"""HTTP handlers: thin shells that parse, call the gateway, and shape the response."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from functools import partial
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .catalogue import model_not_found
from .errors import APIError, InvalidRequest, MethodNotAllowed, NotFound
from .gateway import Gateway, Result
from .schemas import ChatCompletionRequest, CompletionRequest, EmbeddingsBody, parse
from .trace import Trace


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class EventStream(StreamingResponse):
    """Server-sent events whose source is always closed, even when the client left before
    the first byte (closing it is what stops the generation and frees the engine).

    A client that leaves mid-stream is noticed by the watch the generation uses
    (``Watching``), not by Starlette's task group around every stream: its cancel scopes
    cost a fifth of a streamed request's time on the event loop (docs/benchmarks.md)."""

    def __init__(self, events: AsyncGenerator[bytes, None], trace: Trace) -> None:
        super().__init__(
            events,
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
        self._events = events
        self._trace = trace

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            with Watching(receive, self._trace):
                await send(
                    {
                        "type": "http.response.start",
                        "status": self.status_code,
                        "headers": self.raw_headers,
                    }
                )
                async for chunk in self._events:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await self._events.aclose()


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def trace_of(request: Request, route: str) -> Trace:
    trace: Trace = request.scope["state"]["trace"]
    trace.route = route
    return trace


async def read_body(request: Request) -> bytes:
    """The request's body, read from ``receive`` here: Starlette's ``body()`` reads it through
    an async generator, whose making and closing (asyncio's hooks for one, ``aclosing``) cost
    as much as the reading. Read once: nothing reads it again through ``body()``."""
    chunks = []
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def read_json(request: Request) -> Any:
    raw = await read_body(request)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. The API expects a JSON payload, "
            "but what was sent was not valid JSON."
        ) from None


# How long a request runs before a task starts watching for its client to leave. Answers
# quicker than this (a fast upstream) never pay for a watcher task; slow ones (generation) are
# cancelled at most this late, a tenth of a second of work for the engine. At 20 ms, every
# request of a busy gateway (p50 35-60 ms at concurrency 64) started one: 3-4% of its CPU.
WATCH_AFTER = 0.1


class Watching:
    """Cancels the current task if the client disconnects while the block runs, and then ends
    the block quietly (what it was computing is for nobody); the trace says ``cancelled``.

    The watcher is a task that starts only once the block has run ``WATCH_AFTER``; a context
    manager rather than a coroutine around the work, so the work's frames are one fewer for
    every resumption of the request. The block must end with the response, or before it: once
    the response is complete, ``receive`` answers as if the client had left."""

    __slots__ = ("gone", "receive", "task", "timer", "trace", "watcher")

    def __init__(self, receive: Receive, trace: Trace) -> None:
        self.receive = receive
        self.trace = trace
        self.gone = False
        self.watcher: asyncio.Task[None] | None = None

    def __enter__(self) -> None:
        # The loop asked for once: on Python 3.11 each asking is a getpid() system call.
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        assert task is not None
        self.task = task
        self.timer = loop.call_later(WATCH_AFTER, self._start)

    def __exit__(self, kind: type[BaseException] | None, exc: object, tb: object) -> bool:
        self.timer.cancel()
        if self.watcher is not None:
            self.watcher.cancel()
        if kind is not None and issubclass(kind, asyncio.CancelledError) and self.gone:
            self.task.uncancel()
            self.trace.outcome = "cancelled"
            return True
        return False

    def _start(self) -> None:
        self.watcher = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        self.task.cancel()


async def _generate(request: Request, route: str, schema: type[Any]) -> Response:
    trace = trace_of(request, route)
    gateway = gateway_of(request)
    caller = await gateway.auth.authenticate(request.headers.get("authorization"), trace)
    body = parse(schema, await read_json(request))
    method = gateway.chat if schema is ChatCompletionRequest else gateway.complete
    result: Result | None = None
    with Watching(request.receive, trace):
        result = await method(caller, body, trace)
    if result is None:
        return Response(status_code=499)  # nobody is listening; for the log only
    if isinstance(result, dict):
        return JSON(result)
    return EventStream(result, trace)


async def chat_completions(request: Request) -> Response:
    return await _generate(request, "/v1/chat/completions", ChatCompletionRequest)


async def completions(request: Request) -> Response:
    return await _generate(request, "/v1/completions", CompletionRequest)


async def embeddings(request: Request) -> Response:
    trace = trace_of(request, "/v1/embeddings")
    gateway = gateway_of(request)
    caller = await gateway.auth.authenticate(request.headers.get("authorization"), trace)
    body = parse(EmbeddingsBody, await read_json(request))
    result: dict[str, Any] | None = None
    with Watching(request.receive, trace):
        result = await gateway.embed(caller, body, trace)
    return Response(status_code=499) if result is None else JSON(result)


async def list_models(request: Request) -> Response:
    trace = trace_of(request, "/v1/models")
    gateway = gateway_of(request)
    caller = await gateway.auth.authenticate(request.headers.get("authorization"), trace)
    cards = [
        entry.card()
        for entry in gateway.catalogue.listed()
        if gateway.admission.visible(caller, entry)
    ]
    return JSON({"object": "list", "data": cards})


async def get_model(request: Request) -> Response:
    trace = trace_of(request, "/v1/models/{model}")
    gateway = gateway_of(request)
    caller = await gateway.auth.authenticate(request.headers.get("authorization"), trace)
    entry = gateway.catalogue.resolve(request.path_params["model"])
    if not gateway.admission.visible(caller, entry):
        raise model_not_found(entry.id)
    return JSON(entry.card())


async def healthz(request: Request) -> Response:
    trace_of(request, "/healthz")
    gateway = gateway_of(request)
    engines = {entry.id: entry.engine.stats() for entry in gateway.catalogue}
    return JSON(
        {
            "status": "ok",
            "models": {
                model: {"waiting": s.waiting, "busy": s.busy, "slots": s.slots}
                for model, s in engines.items()
            },
        }
    )


async def metrics(request: Request) -> Response:
    trace_of(request, "/metrics")
    body = gateway_of(request).metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    request.scope["state"]["trace"].outcome = exc.code or exc.type
    return JSON(exc.body(), status_code=exc.status, headers=exc.headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: APIError
    if exc.status_code == 404:
        error = NotFound(f"Invalid URL ({request.method} {request.url.path})")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"Method {request.method} is not allowed on {request.url.path}")
    else:
        error = APIError(str(exc.detail))
        error.status = exc.status_code
    return await api_error(request, error)


# The generation routes, dispatched ahead of Starlette's stack (dispatch.py); they stay in
# ``routes`` too, for the other methods' 405s.
direct: dict[str, Callable[[Request], Awaitable[Response]]] = {
    "/v1/chat/completions": partial(
        _generate, route="/v1/chat/completions", schema=ChatCompletionRequest
    ),
    "/v1/completions": partial(_generate, route="/v1/completions", schema=CompletionRequest),
    "/v1/embeddings": embeddings,
}

routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/completions", completions, methods=["POST"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", get_model, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
