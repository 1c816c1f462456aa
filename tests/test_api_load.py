"""Concurrency, queueing and disconnects against a live server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from .services import Server, run_server

MODEL = "smollm2-135m-instruct"
STORY: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Write a long story about a lighthouse keeper."}
]


def wait_until_idle(server: Server, timeout: float = 10.0) -> dict[str, int]:
    """Poll /healthz until no slot is busy (a bounded wait, not a speed assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        state: dict[str, int] = httpx.get(f"{server.url}/healthz").json()["models"][MODEL]
        if (state["busy"] == 0 and state["waiting"] == 0) or time.monotonic() > deadline:
            return state
        time.sleep(0.02)


def test_disconnect_mid_stream_stops_generation_and_frees_the_engine(
    server: Server, client: openai.OpenAI
) -> None:
    body = {"model": MODEL, "messages": STORY, "max_tokens": 800, "stream": True, "temperature": 0}
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.stream(
        "POST", f"{server.base_url}/chat/completions", json=body, headers=headers
    ) as r:
        request_id = r.headers["x-request-id"]
        lines = r.iter_lines()
        seen = [line for _, line in zip(range(10), lines, strict=False)]
        assert any(line.startswith("data: ") for line in seen)
    assert wait_until_idle(server) == {"waiting": 0, "busy": 0, "slots": 1}
    reply = client.chat.completions.create(model=MODEL, messages=STORY, max_tokens=5)
    assert reply.choices[0].message.content
    logged = server.log_lines(request_id)
    assert logged[0]["outcome"] == "cancelled"
    assert 0 < logged[0]["tokens_out"] < 800  # billed for what was generated, then stopped


def test_disconnect_while_waiting_for_a_non_streamed_answer(server: Server) -> None:
    body = {"model": MODEL, "messages": STORY, "max_tokens": 800, "temperature": 0}
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.base_url}/chat/completions", json=body, headers=headers, timeout=0.5)
    assert wait_until_idle(server)["busy"] == 0


def test_eight_concurrent_requests_complete_while_healthz_answers(
    server: Server, client: openai.OpenAI
) -> None:
    stop = threading.Event()
    health: list[dict[str, int]] = []

    def probe() -> None:
        while not stop.is_set():
            response = httpx.get(f"{server.url}/healthz", timeout=5)
            assert response.status_code == 200
            health.append(response.json()["models"][MODEL])
            time.sleep(0.05)

    def ask(i: int) -> str:
        reply = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": f"Count to {i + 3}."}],
            max_tokens=40,
        )
        return reply.choices[0].finish_reason

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            finishes = list(pool.map(ask, range(8)))
    finally:
        stop.set()
        prober.join()
    assert len(finishes) == 8 and set(finishes) <= {"stop", "length"}
    # /healthz answered while requests were generating and queued, not only before or after
    assert any(h["busy"] == 1 and h["waiting"] > 0 for h in health), health


@pytest.fixture(scope="module")
def tiny_queue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    config = "[models.smollm2-135m-instruct]\nn_ctx = 512\nqueue_size = 0\n"
    with run_server(tmp_path_factory.mktemp("tiny"), config) as running:
        yield running


def test_full_queue_answers_503_with_retry_after(tiny_queue: Server, tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {tiny_queue.admin_key}"}
    body = {"model": MODEL, "messages": STORY, "max_tokens": 300, "stream": True}
    with httpx.stream(
        "POST", f"{tiny_queue.base_url}/chat/completions", json=body, headers=headers
    ) as r:
        lines = r.iter_lines()  # kept: a dropped iterator would close the connection
        next(lines)  # generation has started: the only slot is taken
        refused = httpx.post(
            f"{tiny_queue.base_url}/chat/completions",
            json={"model": MODEL, "messages": STORY, "max_tokens": 5},
            headers=headers,
            timeout=30,
        )
    assert refused.status_code == 503, tiny_queue.log()[-3000:]
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["code"] == "engine_overloaded"
