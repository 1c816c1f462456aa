import io
import json
import logging

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from modelgrid.access_log import AccessLog
from modelgrid.metrics import Metrics
from modelgrid.middleware import BodyLimitMiddleware, RequestMiddleware


async def boom(request: Request) -> Response:
    raise RuntimeError("secret internal detail")


async def echo(request: Request) -> Response:
    return PlainTextResponse(str(len(await request.body())))


def app(log: io.StringIO | None = None) -> Starlette:
    return Starlette(
        routes=[Route("/boom", boom), Route("/echo", echo, methods=["POST"])],
        middleware=[
            Middleware(
                RequestMiddleware, metrics=Metrics(), access_log=AccessLog(log or io.StringIO())
            ),
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


def test_one_access_line_per_request_even_for_failures() -> None:
    log = io.StringIO()
    client = TestClient(app(log))
    client.post("/echo", content=b"abc", headers={"x-request-id": "r-1"})
    client.get("/boom", headers={"x-request-id": "r-2"})
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [(x["request_id"], x["status"], x["outcome"]) for x in lines] == [
        ("r-1", 200, "ok"),
        ("r-2", 500, "error"),
    ]
    assert all(x["logger"] == "modelgrid.access" and x["duration_ms"] >= 0 for x in lines)


def test_access_log_writer_thread_writes_everything_by_close() -> None:
    from modelgrid.trace import Trace

    log = io.StringIO()
    access = AccessLog(log, fmt="text")
    access.start()
    for i in range(500):
        access.write(Trace(f"r{i}", "GET", "/x"), 0.001)
    access.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 500 and lines[0].startswith("request request_id=r0 ")
