import logging

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from modelgrid.metrics import Metrics
from modelgrid.middleware import BodyLimitMiddleware, RequestMiddleware


async def boom(request: Request) -> Response:
    raise RuntimeError("secret internal detail")


async def echo(request: Request) -> Response:
    return PlainTextResponse(str(len(await request.body())))


def app() -> Starlette:
    return Starlette(
        routes=[Route("/boom", boom), Route("/echo", echo, methods=["POST"])],
        middleware=[
            Middleware(RequestMiddleware, metrics=Metrics()),
            Middleware(BodyLimitMiddleware, max_bytes=1024),
        ],
    )


def test_unexpected_error_is_a_500_envelope_and_a_logged_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="modelgrid.server"):
        response = TestClient(app()).get("/boom", headers={"x-request-id": "abc-123"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "abc-123"
    error = response.json()["error"]
    assert error["type"] == "server_error" and "abc-123" in error["message"]
    assert "secret internal detail" not in response.text and "Traceback" not in response.text
    record = next(r for r in caplog.records if r.getMessage() == "unhandled error")
    assert record.request_id == "abc-123"  # type: ignore[attr-defined]
    assert record.exc_info is not None and "secret internal detail" in str(record.exc_info[1])


def test_unsafe_client_request_id_is_replaced() -> None:
    response = TestClient(app()).post("/echo", content=b"x", headers={"x-request-id": "a b\x01"})
    assert response.headers["x-request-id"].startswith("req_")


def test_body_limit() -> None:
    client = TestClient(app())
    assert client.post("/echo", content=b"x" * 1024).text == "1024"
    too_big = client.post("/echo", content=b"x" * 1025)
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "request_too_large"
