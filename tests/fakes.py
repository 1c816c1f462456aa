"""A scripted engine for unit tests of the pipeline (never in place of an end-to-end test)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from modelgrid.engines.base import Engine, EngineStats
from modelgrid.types import GenerationRequest, Piece, Prepared, Tenant


class FakeEngine(Engine):
    """Answers every prompt with ``words``, one token each; ``fail_after`` raises mid-stream."""

    def __init__(self, words: list[str], fail_after: int | None = None) -> None:
        self.name = "fake"
        self.created = 0
        self.context_length = 100
        self.words = words
        self.fail_after = fail_after
        self.closed_streams = 0
        self.seeds: list[int | None] = []

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stats(self) -> EngineStats:
        return EngineStats(waiting=0, busy=0, slots=1)

    async def prepare(self, request: GenerationRequest) -> Prepared:
        text = " ".join(m["content"] for m in request.messages or []) or str(request.prompt)
        max_tokens = request.sampling.max_tokens or len(self.words)
        return Prepared(request, prompt_tokens=self.count_tokens(text), max_tokens=max_tokens)

    async def generate(self, prepared: Prepared, tenant: Tenant) -> AsyncGenerator[Piece, None]:
        self.seeds.append(prepared.request.sampling.seed)
        try:
            words = self.words[: prepared.max_tokens]
            for i, word in enumerate(words):
                if self.fail_after is not None and i == self.fail_after:
                    raise RuntimeError("engine exploded")
                yield Piece(word, 1)
            yield Piece("", 0, finish_reason="length" if len(words) < len(self.words) else "stop")
        finally:
            self.closed_streams += 1
