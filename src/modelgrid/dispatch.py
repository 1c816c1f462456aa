"""The server's ASGI entry: the OpenAI API's generation routes go straight to their handlers,
everything else through Starlette's router.

Every proxied request resumes its coroutine chain a few times (the body, the upstream's answer,
the response), and each resumption walks every frame of it. Starlette's stack puts about ten
frames (its error and exception middleware, the router, the route and its request wrapper)
above the handler for what, on these routes, is one dictionary look-up; dispatching them here
leaves the frames that do work. They keep the same middleware (the trace, the access log, the
body limit) and the same errors (OpenAI's envelope for ours; a 500 in it, with the traceback in
the log, for anything else).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Lifespan, Receive, Scope, Send

from .errors import APIError

Handler = Callable[[Request], Awaitable[Response]]
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]
# Wraps an ASGI app in the server's own middleware (as Starlette's stack has them).
Wrap = Callable[[ASGIApp], ASGIApp]


class ModelGridApp(Starlette):
    """Starlette, with ``direct`` POST routes dispatched before its middleware stack."""

    def __init__(
        self,
        *,
        routes: Sequence[BaseRoute],
        middleware: Sequence[Middleware],
        exception_handlers: Mapping[Any, ErrorHandler],
        lifespan: Lifespan[Starlette],
        direct: Mapping[str, Handler],
        wrap: Wrap,
    ) -> None:
        """``direct``: handlers by path, wrapped by ``wrap`` in the middleware ``middleware``
        names (the same, in the same order), their APIErrors handled as
        ``exception_handlers`` says."""
        super().__init__(
            routes=routes,
            middleware=middleware,
            exception_handlers=exception_handlers,
            lifespan=lifespan,
        )
        on_api_error = exception_handlers[APIError]
        self._direct = {path: wrap(_endpoint(h, on_api_error)) for path, h in direct.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            app = self._direct.get(scope["path"])
            if app is not None:
                scope["app"] = self
                await app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def _endpoint(handler: Handler, on_api_error: ErrorHandler) -> ASGIApp:
    """``handler`` as an ASGI app whose APIErrors become their responses."""

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await handler(request)
        except APIError as exc:
            response = await on_api_error(request, exc)
        await response(scope, receive, send)

    return endpoint
