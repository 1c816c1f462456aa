"""Every error a client can cause, sent as raw bytes where a client library would refuse."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .services import Server

MODEL = "smollm2-135m-instruct"
CHAT = "/v1/chat/completions"


def post(
    server: Server, path: str, content: bytes, key: str | None = "admin", **headers: str
) -> httpx.Response:
    if key == "admin":
        key = server.admin_key
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    headers.setdefault("Content-Type", "application/json")
    return httpx.post(server.url + path, content=content, headers=headers, timeout=60)


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-request-id"]
    assert "Traceback" not in response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def test_malformed_json(server: Server) -> None:
    error = error_of(post(server, CHAT, b'{"model": "x", "messages": ['), 400)
    assert error["type"] == "invalid_request_error" and "JSON" in error["message"]


def test_body_that_is_not_an_object(server: Server) -> None:
    assert "JSON object" in error_of(post(server, CHAT, b"[1, 2]"), 400)["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": "%s"}', "messages"),
        (b'{"model": "%s", "messages": "hello"}', "messages"),
        (
            b'{"model": "%s", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "ten"}',
            "max_tokens",
        ),
        (
            b'{"model": "%s", "messages": [{"role": "user", "content": "hi"}], "temperature": -1}',
            "temperature",
        ),
        (b'{"model": "%s", "messages": [{"role": "user"}], "top_logprobs": 3}', "top_logprobs"),
        (
            b'{"model": "%s", "messages": [{"role": "user", "content": "hi"}], "logit_bias": {"1": 5}}',
            "logit_bias",
        ),
    ],
)
def test_wrong_or_missing_fields_name_the_param(server: Server, body: bytes, param: str) -> None:
    content = body.replace(b"%s", MODEL.encode())
    assert error_of(post(server, CHAT, content), 400)["param"] == param


def test_prompt_longer_than_the_context(server: Server) -> None:
    content = b'{"model": "%s", "messages": [{"role": "user", "content": "%s"}]}' % (
        MODEL.encode(),
        b"lorem ipsum " * 2000,
    )
    error = error_of(post(server, CHAT, content), 400)
    assert error["code"] == "context_length_exceeded"
    assert "1024" in error["message"]


def test_completion_longer_than_the_context(server: Server) -> None:
    content = b'{"model": "%s", "prompt": "hi", "max_tokens": 5000}' % MODEL.encode()
    assert (
        error_of(post(server, "/v1/completions", content), 400)["code"] == "context_length_exceeded"
    )


@pytest.mark.parametrize("key", [None, "mg-wrong-key-0000000000000", "x"])
def test_missing_or_wrong_key(server: Server, key: str | None) -> None:
    body = b'{"model": "%s", "messages": [{"role": "user", "content": "hi"}]}' % MODEL.encode()
    error = error_of(post(server, CHAT, body, key=key), 401)
    assert error["code"] in {"missing_api_key", "invalid_api_key"}
    assert "mg-wrong-key-0000000000000" not in error["message"]
    assert error_of(httpx.get(f"{server.url}/v1/models", headers={"Authorization": "Basic x"}), 401)


def test_unknown_model(server: Server) -> None:
    body = b'{"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}'
    error = error_of(post(server, CHAT, body), 404)
    assert error["code"] == "model_not_found" and "gpt-9" in error["message"]


def test_unknown_route_and_wrong_method(server: Server) -> None:
    assert "/v1/nothing" in error_of(post(server, "/v1/nothing", b"{}"), 404)["message"]
    response = httpx.get(server.url + CHAT, headers={"Authorization": f"Bearer {server.admin_key}"})
    assert error_of(response, 405)["code"] == "method_not_allowed"


def test_body_over_the_limit_announced(server: Server) -> None:
    error = error_of(post(server, CHAT, b"x" * 70_000), 413)
    assert "65536" in error["message"]


def test_body_over_the_limit_streamed_without_length(server: Server) -> None:
    def chunks() -> Any:
        for _ in range(20):
            yield b"y" * 8192

    response = httpx.post(
        server.url + CHAT,
        content=chunks(),
        headers={"Authorization": f"Bearer {server.admin_key}"},
        timeout=60,
    )
    assert error_of(response, 413)["code"] == "request_too_large"


def test_unsupported_options_are_refused_not_ignored(server: Server) -> None:
    body = b'{"model": "%s", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "f"}}]}'
    assert (
        error_of(post(server, CHAT, body.replace(b"%s", MODEL.encode())), 400)["param"] == "tools"
    )
    body = b'{"model": "%s", "prompt": "hi", "suffix": "end"}'
    assert (
        error_of(post(server, "/v1/completions", body.replace(b"%s", MODEL.encode())), 400)["param"]
        == "suffix"
    )
