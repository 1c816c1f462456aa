"""ASGI middleware: each a plain class around the app, as Starlette's own are."""

from __future__ import annotations

import logging
import re
import time

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .access_log import AccessLog
from .errors import APIError, PayloadTooLarge, ServerError
from .metrics import Metrics
from .trace import Trace

log = logging.getLogger("modelgrid.server")

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestMiddleware:
    """Gives every request an id and a trace; logs and counts it once it ends; turns any
    unexpected exception into a 500 in OpenAI's envelope, its traceback kept in the log."""

    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: AccessLog) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace = Trace("", scope["method"], scope["path"])
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if _CLIENT_REQUEST_ID.match(incoming) else f"req_{trace.uid}"
        id_header = (b"x-request-id", request_id.encode())
        trace.request_id = request_id
        scope.setdefault("state", {})["trace"] = trace
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                trace.status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header, *trace.headers]
            elif trace.settlement is not None and not message.get("more_body", False):
                await trace.settle()  # the ledger entry exists before the response is whole
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id})
            trace.outcome = "error"
            if not started:
                error = ServerError(
                    f"The server had an error processing your request (request id {request_id})."
                )
                await _send_error(send_with_id, error)
        finally:
            try:
                await trace.settle()  # a request that ended without its last bytes
            except Exception:
                log.exception("settlement failed", extra={"request_id": request_id})
            for release in trace.releases:
                try:
                    await release()
                except Exception:  # a lease that cannot be handed back expires on its own
                    log.exception("release failed", extra={"request_id": request_id})
            seconds = time.perf_counter() - trace.started
            self.metrics.observe_request(trace, seconds)
            self.access_log.write(trace, seconds)


class BodyLimitMiddleware:
    """Refuses bodies over ``max_bytes`` with a 413, whether announced or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _send_error(send, self._too_large())
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, counted, send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"The request body exceeds the limit of {self.max_bytes} bytes.")


def _header(scope: Scope, name: bytes) -> str:
    """One request header's value ('' when absent): a scan of the raw list, cheaper on the
    hot path than building Starlette's ``Headers`` for one lookup."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


async def _send_error(send: Send, error: APIError) -> None:
    body = orjson.dumps(error.body())
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
