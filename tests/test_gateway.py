"""The request path, driven with a scripted engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from modelgrid.admission import Admission
from modelgrid.catalogue import Catalogue, Entry
from modelgrid.counters import MemoryCounters
from modelgrid.errors import AuthenticationFailed, ModelNotFound
from modelgrid.gateway import Gateway
from modelgrid.limiter import MemoryLimiter
from modelgrid.metering import Meter
from modelgrid.metrics import Metrics
from modelgrid.router import Deployment, Router, new_state
from modelgrid.schemas import ChatCompletionRequest, CompletionRequest, parse
from modelgrid.settings import BUILTIN_PLANS, ModelSettings
from modelgrid.storage.database import Database
from modelgrid.storage.keys import KeyRecord, KeyStore
from modelgrid.storage.ledger import Ledger
from modelgrid.trace import Trace

from .fakes import FakeEngine

pytestmark = pytest.mark.anyio

WORDS = ["Hello", " there", ",", " friend", "."]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    await database.migrate()
    yield database
    await database.close()


@pytest.fixture
async def ledger(db: Database, tmp_path: Path) -> AsyncIterator[Ledger]:
    started = Ledger(db, tmp_path / "journal")
    await started.start()
    yield started
    await started.close()


async def make(db: Database, ledger: Ledger, engine: FakeEngine) -> tuple[Gateway, KeyRecord]:
    keys = KeyStore(db)
    key = await keys.create(name="t")
    settings = ModelSettings.model_validate({"engine": "llama_cpp"})
    router = Router("fake", settings, [Deployment(engine, new_state("fake", 1, 5, 1), "fake", "-")])
    catalogue = Catalogue([Entry("fake", router, settings)])
    # The pipeline's own text, unlabelled (labels have tests of their own, in test_labels).
    unlabelled = {"label_position": "none", "label_duty": "user"}
    plans = BUILTIN_PLANS | {"free": BUILTIN_PLANS["free"].model_copy(update=unlabelled)}
    admission = Admission(MemoryLimiter(), plans, "free")
    gateway = Gateway(keys, catalogue, Metrics(), admission, Meter(MemoryCounters(), ledger, {}))
    record = await gateway.auth.authenticate(f"Bearer {key}", Trace("r", "POST", "/"))
    return gateway, record


def chat(**extra: Any) -> ChatCompletionRequest:
    body = {"model": "fake", "messages": [{"role": "user", "content": "hi you"}], **extra}
    result: ChatCompletionRequest = parse(ChatCompletionRequest, body)
    return result


async def events(stream: AsyncIterator[bytes]) -> list[Any]:
    out = []
    async for chunk in stream:
        assert chunk.startswith(b"data: ") and chunk.endswith(b"\n\n")
        data = chunk[6:-2]
        out.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
    return out


async def test_authentication_errors(db: Database, ledger: Ledger) -> None:
    gateway, _ = await make(db, ledger, FakeEngine(WORDS))
    trace = Trace("r", "POST", "/")
    with pytest.raises(AuthenticationFailed) as missing:
        await gateway.auth.authenticate(None, trace)
    assert missing.value.code == "missing_api_key" and missing.value.status == 401
    with pytest.raises(AuthenticationFailed) as wrong:
        await gateway.auth.authenticate("Bearer mg-not-a-real-key-at-all", trace)
    assert "mg-not-a-real-key-at-all" not in wrong.value.message  # never echo a secret


async def test_unknown_model_is_404(db: Database, ledger: Ledger) -> None:
    gateway, caller = await make(db, ledger, FakeEngine(WORDS))
    with pytest.raises(ModelNotFound) as caught:
        await gateway.chat(caller, chat(model="nope"), Trace("r", "POST", "/"))
    assert caught.value.status == 404 and caught.value.param == "model"


async def test_non_streamed_chat_collects_text_and_usage(db: Database, ledger: Ledger) -> None:
    gateway, caller = await make(db, ledger, FakeEngine(WORDS))
    trace = Trace("r", "POST", "/")
    result = await gateway.chat(caller, chat(), trace)
    assert isinstance(result, dict)
    assert result["object"] == "chat.completion"
    assert result["choices"][0]["message"]["content"] == "Hello there, friend."
    assert result["choices"][0]["finish_reason"] == "stop"
    assert result["usage"] == {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}
    assert (trace.tokens_in, trace.tokens_out, trace.model) == (2, 5, "fake")


async def test_n_choices_count_the_prompt_once_and_vary_the_seed(
    db: Database, ledger: Ledger
) -> None:
    engine = FakeEngine(WORDS)
    gateway, caller = await make(db, ledger, engine)
    result = await gateway.chat(caller, chat(n=3, seed=10), Trace("r", "POST", "/"))
    assert isinstance(result, dict)
    assert [c["index"] for c in result["choices"]] == [0, 1, 2]
    assert result["usage"]["prompt_tokens"] == 2
    assert result["usage"]["completion_tokens"] == 15
    assert engine.seeds == [10, 11, 12]


async def test_stream_events_follow_openai(db: Database, ledger: Ledger) -> None:
    gateway, caller = await make(db, ledger, FakeEngine(WORDS))
    trace = Trace("r", "POST", "/")
    trace.stream = True
    body = chat(stream=True, stream_options={"include_usage": True}, max_tokens=3)
    stream = await gateway.chat(caller, body, trace)
    assert not isinstance(stream, dict)
    got = await events(stream)
    assert got[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [e["choices"][0]["delta"]["content"] for e in got[1:4]] == ["Hello", " there", ","]
    assert got[4]["choices"][0]["finish_reason"] == "length"
    assert got[5]["choices"] == [] and got[5]["usage"]["completion_tokens"] == 3
    assert got[6] == "[DONE]"
    assert len({e["id"] for e in got[:-1]}) == 1


async def test_closing_a_stream_closes_the_engine_generation(db: Database, ledger: Ledger) -> None:
    engine = FakeEngine(WORDS)
    gateway, caller = await make(db, ledger, engine)
    trace = Trace("r", "POST", "/")
    trace.stream = True
    stream = await gateway.chat(caller, chat(stream=True), trace)
    assert not isinstance(stream, dict)
    await anext(stream)
    await anext(stream)
    await stream.aclose()
    assert engine.closed_streams == 1
    assert trace.outcome == "cancelled" and trace.tokens_out == 1


async def test_engine_failure_mid_stream_ends_with_an_error_event(
    db: Database, ledger: Ledger
) -> None:
    gateway, caller = await make(db, ledger, FakeEngine(WORDS, fail_after=2))
    trace = Trace("r", "POST", "/")
    trace.stream = True
    stream = await gateway.chat(caller, chat(stream=True), trace)
    assert not isinstance(stream, dict)
    got = await events(stream)
    assert got[-1]["error"]["type"] == "server_error"
    assert "r" in got[-1]["error"]["message"]  # names the request id for support
    assert "exploded" not in got[-1]["error"]["message"]  # internals stay in the log
    assert trace.outcome == "error"


async def test_text_completion_with_echo_and_several_prompts(db: Database, ledger: Ledger) -> None:
    gateway, caller = await make(db, ledger, FakeEngine(WORDS))
    body = parse(CompletionRequest, {"model": "fake", "prompt": ["a b", "c"], "echo": True, "n": 2})
    result = await gateway.complete(caller, body, Trace("r", "POST", "/"))
    assert isinstance(result, dict)
    assert result["object"] == "text_completion"
    texts = [c["text"] for c in result["choices"]]
    assert texts == ["a bHello there, friend."] * 2 + ["cHello there, friend."] * 2
    assert result["usage"]["prompt_tokens"] == 3  # 2 + 1, each prompt once
