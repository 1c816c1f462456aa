"""The embedded engine with the real SmolLM2 model, in-process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from llama_cpp import Llama

from modelgrid.engines.llama_cpp import LlamaCppEngine, default_model_path
from modelgrid.errors import ContextLengthExceeded, InvalidRequest, Overloaded
from modelgrid.settings import LlamaCppSettings
from modelgrid.types import GenerationRequest, Piece, ResponseFormat, Sampling, Tenant

pytestmark = pytest.mark.anyio

GREEDY = Sampling(
    max_tokens=24,
    temperature=0.0,
    top_p=1.0,
    presence_penalty=0.0,
    frequency_penalty=0.0,
    seed=7,
)
STORY = [{"role": "user", "content": "Write a story about a cat."}]


@pytest.fixture
async def engine() -> AsyncIterator[LlamaCppEngine]:
    # One per test (loading takes a tenth of a second): its queue lives on the test's loop.
    engine = LlamaCppEngine("smol", LlamaCppSettings(n_ctx=512, queue_size=1))
    await engine.start()
    yield engine
    await engine.close()


async def run(engine: LlamaCppEngine, request: GenerationRequest) -> tuple[str, list[Piece]]:
    prepared = await engine.prepare(request)
    pieces = [piece async for piece in engine.generate(prepared, Tenant("t"))]
    return "".join(p.text for p in pieces), pieces


async def test_generation_matches_llama_cpp_python_itself(engine: LlamaCppEngine) -> None:
    text, pieces = await run(engine, GenerationRequest(GREEDY, messages=STORY))
    reference: Any = Llama(str(default_model_path()), n_ctx=512, verbose=False)
    expected = reference.create_chat_completion(STORY, max_tokens=24, temperature=0.0, seed=7)
    reference.close()
    assert text == expected["choices"][0]["message"]["content"]
    assert sum(p.tokens for p in pieces) == expected["usage"]["completion_tokens"] == 24
    assert pieces[-1].finish_reason == "length"
    prepared = await engine.prepare(GenerationRequest(GREEDY, messages=STORY))
    assert prepared.prompt_tokens == expected["usage"]["prompt_tokens"]


async def test_same_seed_same_output_even_at_high_temperature(engine: LlamaCppEngine) -> None:
    hot = replace(GREEDY, temperature=1.5, top_p=1.0, seed=99)
    first, _ = await run(engine, GenerationRequest(hot, messages=STORY))
    await run(engine, GenerationRequest(replace(hot, seed=5), messages=STORY))
    again, _ = await run(engine, GenerationRequest(hot, messages=STORY))
    assert first == again


async def test_stop_sequence_ends_generation_and_is_not_shown(engine: LlamaCppEngine) -> None:
    full, _ = await run(engine, GenerationRequest(GREEDY, messages=STORY))
    word = full.split()[3]
    text, pieces = await run(
        engine, GenerationRequest(replace(GREEDY, stop=(word,)), messages=STORY)
    )
    assert text == full[: full.index(word)]
    assert pieces[-1].finish_reason == "stop"


async def test_json_object_mode_yields_json(engine: LlamaCppEngine) -> None:
    sampling = replace(GREEDY, max_tokens=200, grammar=ResponseFormat("json_object"))
    ask = [{"role": "user", "content": "Return a JSON object with a cat's name."}]
    text, pieces = await run(engine, GenerationRequest(sampling, messages=ask))
    assert pieces[-1].finish_reason == "stop", text
    assert isinstance(json.loads(text), dict)


async def test_json_schema_constrains_the_shape(engine: LlamaCppEngine) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    sampling = replace(GREEDY, max_tokens=100, grammar=ResponseFormat("json_schema", schema))
    ask = [{"role": "user", "content": "Give a cat's name and age."}]
    text, _ = await run(engine, GenerationRequest(sampling, messages=ask))
    value = json.loads(text)
    assert set(value) == {"name", "age"} and isinstance(value["age"], int)


async def test_unusable_schema_is_a_400(engine: LlamaCppEngine) -> None:
    sampling = replace(GREEDY, grammar=ResponseFormat("json_schema", {"type": "nonsense"}))
    with pytest.raises(InvalidRequest) as caught:
        await engine.prepare(GenerationRequest(sampling, messages=STORY))
    assert caught.value.param == "response_format"


async def test_logprobs_are_probabilities_of_the_chosen_tokens(engine: LlamaCppEngine) -> None:
    text, pieces = await run(engine, GenerationRequest(replace(GREEDY, logprobs=3), messages=STORY))
    logprobs = [lp for p in pieces for lp in p.logprobs]
    assert len(logprobs) == 24
    for lp in logprobs:
        assert lp.logprob <= 0 and len(lp.top) == 3
        # greedy: the chosen token is the most likely one
        assert lp.top[0].token == lp.token and lp.top[0].logprob == pytest.approx(lp.logprob)
        assert [t.logprob for t in lp.top] == sorted((t.logprob for t in lp.top), reverse=True)
    assert "".join(lp.token for lp in logprobs) == text


async def test_text_prompt_and_token_prompt_agree(engine: LlamaCppEngine) -> None:
    text, _ = await run(engine, GenerationRequest(GREEDY, prompt="The capital of France is"))
    prepared = await engine.prepare(GenerationRequest(GREEDY, prompt="The capital of France is"))
    tokens = prepared.payload.tokens
    same, _ = await run(engine, GenerationRequest(GREEDY, prompt=tokens))
    assert text == same and text
    with pytest.raises(InvalidRequest):
        await engine.prepare(GenerationRequest(GREEDY, prompt=[10**9]))


async def test_prompt_longer_than_the_context_is_refused_before_queueing(
    engine: LlamaCppEngine,
) -> None:
    long = [{"role": "user", "content": "word " * 600}]
    with pytest.raises(ContextLengthExceeded) as caught:
        await engine.prepare(GenerationRequest(GREEDY, messages=long))
    assert caught.value.code == "context_length_exceeded" and "512" in caught.value.message
    with pytest.raises(ContextLengthExceeded) as caught:
        await engine.prepare(GenerationRequest(replace(GREEDY, max_tokens=500), messages=STORY))
    assert caught.value.param == "max_tokens"
    unlimited = await engine.prepare(
        GenerationRequest(replace(GREEDY, max_tokens=None), messages=STORY)
    )
    assert unlimited.max_tokens == 512 - unlimited.prompt_tokens


async def test_closing_the_stream_stops_generation_and_frees_the_slot(
    engine: LlamaCppEngine,
) -> None:
    request = GenerationRequest(replace(GREEDY, max_tokens=400), messages=STORY)
    prepared = await engine.prepare(request)
    stream = engine.generate(prepared, Tenant("t"))
    produced = 0
    async for piece in stream:
        produced += piece.tokens
        if produced == 3:
            break
    await stream.aclose()
    for _ in range(1000):  # the worker notices within a token; allow for a loaded machine
        if engine.stats().busy == 0:
            break
        await asyncio.sleep(0.01)
    assert engine.stats().busy == 0
    text, _ = await run(engine, GenerationRequest(GREEDY, messages=STORY))
    assert text


async def test_queue_beyond_its_size_is_refused(engine: LlamaCppEngine) -> None:
    request = GenerationRequest(replace(GREEDY, max_tokens=100), messages=STORY)
    prepared = await engine.prepare(request)

    async def consume() -> int:
        return sum([p.tokens async for p in engine.generate(prepared, Tenant("t"))])

    running = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    waiting = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    with pytest.raises(Overloaded):
        await anext(engine.generate(prepared, Tenant("other")))
    assert await running == 100 and await waiting == 100
