"""ModelGrid in front of OpenAI-compatible upstreams that fail on demand (``faults.py``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam

from .faults import DRIP_SECONDS, EMBEDDING, TEXT, USAGE, FaultServer
from .services import Server, free_port, run_server

SECRET = "sk-upstream-secret-never-shown"
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello"}]


def deployment(url: str, **extra: Any) -> str:
    lines = ["[[models.{model}.deployments]]", 'engine = "openai"', f'base_url = "{url}"']
    lines += [f"{k} = {orjson.dumps(v).decode()}" for k, v in extra.items()]
    return "\n".join(lines)


def model(name: str, deployments: list[str], **extra: Any) -> str:
    head = [f"[models.{name}]"] + [f"{k} = {orjson.dumps(v).decode()}" for k, v in extra.items()]
    return "\n".join(head + [d.replace("{model}", name) for d in deployments]) + "\n"


@pytest.fixture(scope="module")
def gateway(faults: FaultServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    fast = {"max_retries": 0}
    retry = {"max_retries": 2, "retry_backoff_seconds": 0.01}
    config = "".join(
        [
            model(
                "up",
                [deployment(faults.url("ok"), model="upstream-name", api_key_env="FAULT_KEY")],
            ),
            model("flaky", [deployment(faults.url("flaky-2"))], **retry),
            model("embed-flaky", [deployment(faults.url("flaky-1"))], **retry),
            model(
                "mixed",
                [
                    deployment(faults.url("reset"), name="bad"),
                    deployment(faults.url("ok"), name="good"),
                ],
                **retry,
            ),
            model("fallback", [deployment(faults.url("status-503"))], fallbacks=["up"], **retry),
            model(
                "breaker",
                [
                    deployment(
                        faults.url("status-500"), breaker_failures=2, breaker_cooldown_seconds=600
                    )
                ],
                **fast,
            ),
            model(
                "probe",
                [
                    deployment(
                        faults.url("status-502"), breaker_failures=1, breaker_cooldown_seconds=0.5
                    )
                ],
                **fast,
            ),
            model("refused", [deployment(f"http://127.0.0.1:{free_port()}/v1")], **retry),
            model("slow", [deployment(faults.url("slow"), total_timeout=1.0)], **fast),
            model("slow-start", [deployment(faults.url("slow"), first_token_timeout=0.3)], **fast),
            model("cut", [deployment(faults.url("cut"))], **retry),
            model("badjson", [deployment(faults.url("badjson"))], **fast),
            model("moved", [deployment(faults.url("status-301"))], **fast),
            model("bad400", [deployment(faults.url("status-400"))], **retry),
            model("auth", [deployment(faults.url("status-401"), api_key_env="FAULT_KEY")], **fast),
            model("nousage", [deployment(faults.url("nousage"))]),
            model("drip", [deployment(faults.url("drip"))]),
            model("stall", [deployment(faults.url("drip"), first_token_timeout=0.1)], **fast),
            model(
                "both",
                [
                    '[[models.{model}.deployments]]\nengine = "llama_cpp"\nname = "local"\nn_ctx = 512',
                    deployment(faults.url("ok"), name="remote"),
                ],
            ),
        ]
    )
    # The safety review holds streamed text back until it is judged (tests/test_review_api.py);
    # this module tests the forwarding underneath, piece by piece as it arrives.
    config = "[review]\nenabled = false\n" + config
    with run_server(tmp_path_factory.mktemp("gw"), config, FAULT_KEY=SECRET) as server:
        yield server


@pytest.fixture
def client(gateway: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=gateway.admin_key, max_retries=0)


def ask(gateway: Server, model: str, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{gateway.base_url}/chat/completions",
        json={"model": model, "messages": HELLO, **body},
        headers={"Authorization": f"Bearer {gateway.admin_key}"},
        timeout=30,
    )


def test_upstream_answers_with_its_usage_and_our_key(
    client: openai.OpenAI, faults: FaultServer
) -> None:
    reply = client.chat.completions.create(
        model="up", messages=HELLO, max_tokens=9, temperature=0.3
    )
    assert reply.choices[0].message.content == "".join(TEXT)
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (11, 5)
    sent = faults.bodies[-1]
    assert (
        sent["model"] == "upstream-name" and sent["max_tokens"] == 9 and sent["temperature"] == 0.3
    )
    assert "top_p" not in sent  # left to the upstream's own default
    assert faults.headers[-1]["authorization"] == f"Bearer {SECRET}"


def test_streams_and_text_completions_pass_through(
    client: openai.OpenAI, faults: FaultServer
) -> None:
    chunks = list(
        client.chat.completions.create(
            model="up", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "".join(TEXT)
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == USAGE["prompt_tokens"]
    assert faults.bodies[-1]["stream"] is True
    text = client.completions.create(model="up", prompt="Hi", max_tokens=5)
    assert text.choices[0].text == "".join(TEXT)


def test_stream_is_forwarded_as_it_arrives(gateway: Server) -> None:
    body = {"model": "drip", "messages": HELLO, "stream": True}
    headers = {"Authorization": f"Bearer {gateway.admin_key}"}
    started = time.monotonic()
    arrivals = []
    with httpx.stream(
        "POST", f"{gateway.base_url}/chat/completions", json=body, headers=headers
    ) as r:
        for line in r.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                arrivals.append(time.monotonic() - started)
    assert len(arrivals) == len(TEXT)
    # each chunk is passed on when the upstream sends it, not when the stream ends
    assert arrivals[-1] - arrivals[0] >= (len(TEXT) - 1) * DRIP_SECONDS * 0.8


def test_a_client_leaving_mid_stream_closes_the_upstream_request(
    gateway: Server, faults: FaultServer
) -> None:
    body = {"model": "drip", "messages": HELLO, "stream": True}
    headers = {"Authorization": f"Bearer {gateway.admin_key}"}
    before = faults.aborted["drip"]
    with httpx.stream(
        "POST", f"{gateway.base_url}/chat/completions", json=body, headers=headers
    ) as r:
        for line in r.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                break  # the first words, then hang up
    # The upstream sees its reader gone at its next write, long before its stream would end.
    deadline = time.monotonic() + (len(TEXT) - 1) * DRIP_SECONDS
    while faults.aborted["drip"] == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert faults.aborted["drip"] == before + 1


def test_upstream_usage_missing_is_counted(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="nousage", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(reply)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(TEXT)
    assert chunks[-1].usage.prompt_tokens > 0


def test_retries_until_the_upstream_recovers(gateway: Server, faults: FaultServer) -> None:
    assert ask(gateway, "flaky").status_code == 200
    assert faults.hits["flaky-2"] == 3


def test_a_resetting_deployment_is_routed_around(gateway: Server) -> None:
    statuses = [ask(gateway, "mixed").status_code for _ in range(20)]
    assert statuses == [200] * 20


def test_fallback_to_another_model(gateway: Server, faults: FaultServer) -> None:
    before = faults.hits["status-503"]
    response = ask(gateway, "fallback")
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"]
    assert faults.hits["status-503"] - before == 3  # the first attempt and two retries


def test_breaker_opens_and_spares_the_upstream(gateway: Server, faults: FaultServer) -> None:
    first, second, third = (ask(gateway, "breaker") for _ in range(3))
    assert (first.status_code, second.status_code) == (502, 502)
    assert third.status_code == 503 and "failing" in third.json()["error"]["message"]
    assert faults.hits["status-500"] == 2  # the open breaker kept the third away
    admin = {"Authorization": f"Bearer {gateway.admin_key}"}
    models = httpx.get(f"{gateway.url}/admin/v1/deployments", headers=admin).json()["data"]
    state = next(m for m in models if m["model"] == "breaker")["deployments"][0]
    assert state["breaker"] == "open" and state["failures"] == 2 and state["requests"] == 2
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'modelgrid_deployment_breaker_state{deployment="breaker",model="breaker"} 2.0' in metrics


def test_half_open_breaker_sends_one_probe(gateway: Server, faults: FaultServer) -> None:
    assert ask(gateway, "probe").status_code == 502
    assert ask(gateway, "probe").status_code == 503
    assert faults.hits["status-502"] == 1
    time.sleep(0.6)  # the configured cooldown, and no longer
    assert ask(gateway, "probe").status_code == 502  # the probe reached the upstream, and failed
    assert faults.hits["status-502"] == 2
    assert ask(gateway, "probe").status_code == 503


@pytest.mark.parametrize(
    ("model_id", "words"),
    [
        ("refused", "connection refused"),
        ("slow", "timed out"),
        ("badjson", "invalid JSON"),
        ("moved", "redirected the request (HTTP 301)"),
    ],
)
def test_upstream_failures_become_502(gateway: Server, model_id: str, words: str) -> None:
    response = ask(gateway, model_id)
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert words in error["message"] and model_id in error["message"]
    assert error["code"] == "upstream_error"


def test_a_stream_must_start_within_the_first_token_timeout(gateway: Server) -> None:
    # the upstream answers after 3 s: well inside the total timeout, beyond the first-token one
    response = ask(gateway, "slow-start", stream=True)
    assert response.status_code == 502 and "timed out" in response.json()["error"]["message"]


def test_upstream_400_is_passed_on_without_retry(gateway: Server, faults: FaultServer) -> None:
    response = ask(gateway, "bad400")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "upstream says 400"
    assert response.json()["error"]["param"] == "temperature"
    assert faults.hits["status-400"] == 1


def test_upstream_auth_failure_names_the_deployment_never_the_key(gateway: Server) -> None:
    response = ask(gateway, "auth")
    assert response.status_code == 502
    assert "'auth'" in response.json()["error"]["message"]
    assert SECRET not in response.text
    admin = {"Authorization": f"Bearer {gateway.admin_key}"}
    assert SECRET not in httpx.get(f"{gateway.url}/admin/v1/deployments", headers=admin).text
    assert SECRET not in gateway.log()


def stream_events(gateway: Server, model: str) -> tuple[str, list[dict[str, Any]]]:
    """A streamed answer's text and its events, read without a client that would raise on
    an error event."""
    body = {"model": model, "messages": HELLO, "stream": True}
    headers = {"Authorization": f"Bearer {gateway.admin_key}"}
    with httpx.stream(
        "POST", f"{gateway.base_url}/chat/completions", json=body, headers=headers
    ) as r:
        events = [orjson.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    content = [e["choices"][0]["delta"].get("content") for e in events if e.get("choices")]
    return "".join(c or "" for c in content), events


def test_stream_cut_mid_way_ends_with_an_error_event(gateway: Server, faults: FaultServer) -> None:
    text, events = stream_events(gateway, "cut")
    assert text == "".join(TEXT[:2])
    assert "early" in events[-1]["error"]["message"]
    assert faults.hits["cut"] == 1  # output had reached the client: no silent retry


def test_an_upstream_falling_silent_mid_stream_ends_it_with_an_error_event(
    gateway: Server,
) -> None:
    # Its chunks come DRIP_SECONDS apart, longer than the wait allowed for each.
    text, events = stream_events(gateway, "stall")
    assert text == TEXT[0]
    assert "timed out" in events[-1]["error"]["message"]


def test_embeddings_through_upstreams_with_retries(
    client: openai.OpenAI, gateway: Server, faults: FaultServer
) -> None:
    result = client.embeddings.create(model="up", input=["a", "b"])
    assert [d.embedding for d in result.data] == [EMBEDDING, EMBEDDING]
    assert result.model == "up" and result.usage.prompt_tokens == 6
    assert faults.bodies[-1]["model"] == "upstream-name"
    assert client.embeddings.create(model="embed-flaky", input="x").data[0].embedding == EMBEDDING
    assert faults.hits["flaky-1"] == 2  # failed once, retried
    assert client.embeddings.create(model="fallback", input="x").data[0].embedding == EMBEDDING
    local = httpx.post(
        f"{gateway.base_url}/embeddings",
        json={"model": "both", "input": "x"},
        headers={"Authorization": f"Bearer {gateway.admin_key}"},
    )
    assert local.status_code in (200, 400)  # "both" mixes an embedded deployment that has none
    bad = httpx.post(
        f"{gateway.base_url}/embeddings",
        json={"model": "up", "input": []},
        headers={"Authorization": f"Bearer {gateway.admin_key}"},
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "input"


def test_embedded_and_upstream_deployments_mix(gateway: Server) -> None:
    admin = {"Authorization": f"Bearer {gateway.admin_key}"}
    for _ in range(40):
        assert ask(gateway, "both", max_tokens=4).status_code == 200
        models = httpx.get(f"{gateway.url}/admin/v1/deployments", headers=admin).json()["data"]
        used = {
            d["name"]: d["requests"]
            for d in next(m for m in models if m["model"] == "both")["deployments"]
        }
        if used["local"] and used["remote"]:
            break
    assert used["local"] > 0 and used["remote"] > 0
