"""End to end: the official ``openai`` client against ``modelgrid serve`` in a subprocess."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import openai
import pytest
from llama_cpp import Llama
from openai.types.chat import ChatCompletionMessageParam

from modelgrid.engines.llama_cpp import default_model_path

from .services import Server

MODEL = "smollm2-135m-instruct"
ASK: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Give me three tips for learning to cook."}
]


@pytest.fixture(scope="module")
def reference() -> Any:
    """llama-cpp-python itself, in this process: what the model counts and says."""
    return Llama(str(default_model_path()), n_ctx=1024, verbose=False)


def test_models_are_listed_and_retrievable(client: openai.OpenAI) -> None:
    models = client.models.list().data
    assert [m.id for m in models] == [MODEL]
    assert client.models.retrieve(MODEL).owned_by == "modelgrid"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_chat_completion(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=30, user="u-1")
    assert reply.id.startswith("chatcmpl-") and reply.model == MODEL
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content
    assert reply.choices[0].finish_reason in {"stop", "length"}
    assert reply.usage is not None and 0 < reply.usage.completion_tokens <= 30
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_streamed_chat_equals_non_streamed_and_counts_like_the_model(
    client: openai.OpenAI, reference: Any
) -> None:
    args = {"model": MODEL, "messages": ASK, "max_tokens": 40, "temperature": 0, "seed": 3}
    whole = client.chat.completions.create(**args)  # type: ignore[call-overload]
    chunks = list(
        client.chat.completions.create(**args, stream=True, stream_options={"include_usage": True})  # type: ignore[call-overload]
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content
    assert chunks[-1].usage == whole.usage
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == [whole.choices[0].finish_reason]
    expected = reference.create_chat_completion(list(ASK), max_tokens=40, temperature=0, seed=3)
    assert whole.choices[0].message.content == expected["choices"][0]["message"]["content"]
    assert whole.usage is not None
    assert whole.usage.prompt_tokens == expected["usage"]["prompt_tokens"]
    assert whole.usage.completion_tokens == expected["usage"]["completion_tokens"]


def test_text_completion_streamed_and_not(client: openai.OpenAI, reference: Any) -> None:
    prompt = "The three primary colours are"
    whole = client.completions.create(
        model=MODEL, prompt=prompt, max_tokens=20, temperature=0, seed=1
    )
    chunks = list(
        client.completions.create(
            model=MODEL,
            prompt=prompt,
            max_tokens=20,
            temperature=0,
            seed=1,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert chunks[-1].usage == whole.usage
    expected = reference.create_completion(prompt, max_tokens=20, temperature=0, seed=1)
    assert whole.choices[0].text == expected["choices"][0]["text"]
    assert whole.usage is not None
    assert whole.usage.prompt_tokens == expected["usage"]["prompt_tokens"]
    assert whole.usage.completion_tokens == expected["usage"]["completion_tokens"]


def test_same_seed_same_answer_when_sampling(client: openai.OpenAI) -> None:
    args = {"model": MODEL, "messages": ASK, "max_tokens": 25, "temperature": 1.2, "seed": 42}
    first = client.chat.completions.create(**args)  # type: ignore[call-overload]
    second = client.chat.completions.create(**args)  # type: ignore[call-overload]
    assert first.choices[0].message.content == second.choices[0].message.content


def test_n_choices_and_stop(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL, messages=ASK, max_tokens=15, n=2, seed=5, temperature=1.0, stop=["\n\n"]
    )
    assert [c.index for c in reply.choices] == [0, 1]
    assert all("\n\n" not in (c.message.content or "") for c in reply.choices)
    with pytest.raises(openai.BadRequestError) as too_many:
        client.chat.completions.create(model=MODEL, messages=ASK, n=50)
    assert too_many.value.body["param"] == "n"  # type: ignore[index]


def test_json_response_format(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Return a JSON object with a cat's name."}],
        response_format={"type": "json_object"},
        max_tokens=200,
        temperature=0,
    )
    assert isinstance(json.loads(reply.choices[0].message.content or ""), dict)


def test_logprobs(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL, messages=ASK, max_tokens=5, temperature=0, logprobs=True, top_logprobs=2
    )
    content = reply.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None and len(content) == 5
    assert all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in content)
    assert "".join(t.token for t in content) == reply.choices[0].message.content
    plain = client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=5)
    assert plain.choices[0].logprobs is None


def test_metrics_expose_requests_latency_tokens_and_queue(
    server: Server, client: openai.OpenAI
) -> None:
    client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=3)
    text = httpx.get(f"{server.url}/metrics").text
    for name in [
        'modelgrid_requests_total{route="/v1/chat/completions",status="200"}',
        "modelgrid_request_duration_seconds_bucket",
        "modelgrid_time_to_first_token_seconds_bucket",
        'modelgrid_tokens_total{direction="out",model="smollm2-135m-instruct"}',
        'modelgrid_queue_depth{model="smollm2-135m-instruct"}',
    ]:
        assert name in text, name
    # Read each second: never as old as a few seconds while the database is there.
    age = re.search(r"^modelgrid_change_feed_age_seconds ([\d.e+-]+)$", text, re.M)
    assert age is not None and 0 <= float(age[1]) < 5


def test_one_structured_log_line_per_request(server: Server) -> None:
    response = httpx.post(
        f"{server.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {server.admin_key}"},
        json={"model": MODEL, "messages": ASK, "max_tokens": 4, "user": "alice"},
        timeout=60,
    )
    request_id = response.headers["x-request-id"]
    lines = server.log_lines(request_id)
    assert len(lines) == 1
    line = lines[0]
    assert line["status"] == 200 and line["model"] == MODEL and line["user"] == "alice"
    assert line["key_prefix"] == server.admin_key[:11]
    assert line["tokens_in"] == response.json()["usage"]["prompt_tokens"]
    assert line["tokens_out"] == response.json()["usage"]["completion_tokens"]
    assert line["ttft_ms"] > 0 and line["duration_ms"] >= line["ttft_ms"]
