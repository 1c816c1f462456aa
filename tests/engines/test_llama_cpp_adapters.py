"""LoRA adapters on the embedded engine, with the real SmolLM2 model and adapters written for
it: each changes what the model says, the base comes back without one, and a slot keeps a
bounded set loaded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from modelgrid.engines.llama_cpp import LlamaCppEngine, default_model_path
from modelgrid.errors import InvalidRequest
from modelgrid.settings import LlamaCppSettings
from modelgrid.types import GenerationRequest, Sampling, Tenant

from .lora import write_lora

pytestmark = pytest.mark.anyio

GREEDY = Sampling(12, 0.0, 1.0, 0.0, 0.0, seed=1)
ASK = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
async def engine() -> AsyncIterator[LlamaCppEngine]:
    engine = LlamaCppEngine("smol", LlamaCppSettings(n_ctx=512, max_adapters=1))
    await engine.start()
    yield engine
    await engine.close()


async def say(engine: LlamaCppEngine, adapter: str = "") -> str:
    prepared = await engine.prepare(GenerationRequest(GREEDY, messages=ASK, adapter=adapter))
    return (await engine.complete(prepared, Tenant("t"))).text


async def weigh(engine: LlamaCppEngine, adapter: str = "") -> tuple[tuple[str, float], ...]:
    """The greedy answer's tokens and their log-probabilities: a small adapter may leave the
    greedy text as it was (which one does varies with llama.cpp's build), never these."""
    request = GenerationRequest(replace(GREEDY, logprobs=0), messages=ASK, adapter=adapter)
    piece = await engine.complete(await engine.prepare(request), Tenant("t"))
    return tuple((t.token, round(t.logprob, 4)) for t in piece.logprobs)


async def test_each_adapter_changes_the_answer_and_the_base_comes_back(
    engine: LlamaCppEngine, tmp_path: Path
) -> None:
    a = str(write_lora(tmp_path / "a.gguf", default_model_path(), seed=1))
    b = str(write_lora(tmp_path / "b.gguf", default_model_path(), seed=2))
    base = await weigh(engine)
    with_a, with_b = await weigh(engine, a), await weigh(engine, b)
    assert len({base, with_a, with_b}) == 3 and base
    assert await weigh(engine, a) == with_a  # loaded again (max_adapters = 1), same weights
    assert await weigh(engine) == base  # no stale cache of an adapter's prompt
    assert engine._adapters[id(engine._models[0])].loaded == [a]


async def test_a_missing_or_foreign_adapter_is_a_clear_error(
    engine: LlamaCppEngine, tmp_path: Path
) -> None:
    with pytest.raises(InvalidRequest, match="not on this server"):
        await say(engine, str(tmp_path / "absent.gguf"))
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file")
    with pytest.raises(InvalidRequest, match="not a LoRA"):
        await say(engine, str(junk))
    assert await say(engine)  # the slot still serves
