"""A guard model's answers, parsed and mapped to TC260-003 risks."""

from __future__ import annotations

import asyncio

import pytest

from modelgrid.errors import UpstreamError
from modelgrid.review.config import GuardSettings
from modelgrid.review.guard import Finding, Guard, hits_of, parse_answer
from modelgrid.types import GenerationRequest, Prepared

from ..fakes import FakeEngine


def test_llama_guard_answers() -> None:
    assert parse_answer("safe") == Finding(False, ())
    assert parse_answer("\n\nunsafe\nS1,S10") == Finding(True, ("S1", "S10"))
    assert parse_answer("unsafe") == Finding(True, ())


def test_qwen3guard_answers() -> None:
    answer = "Safety: Unsafe\nCategories: Violent, Jailbreak"
    assert parse_answer(answer) == Finding(True, ("Violent", "Jailbreak"))
    assert not parse_answer("Safety: Controversial\nCategories: None").unsafe
    assert not parse_answer("Safety: Safe").unsafe


def test_categories_map_to_risks_with_the_operators_table_first() -> None:
    hits = hits_of(Finding(True, ("S9", "violent", "S99")), {"violent": "A.1.4"})
    assert [h.risk for h in hits] == ["A.1.4", "A.1.4", "A.1.8"]
    assert hits_of(Finding(False, ("S1",)), {}) == []


class _Stalled(FakeEngine):
    async def prepare(self, request: GenerationRequest) -> Prepared:
        await asyncio.sleep(10)
        raise AssertionError("not reached")


class _Failing(FakeEngine):
    async def prepare(self, request: GenerationRequest) -> Prepared:
        raise UpstreamError("upstream down", status=502)


@pytest.mark.anyio
async def test_the_guard_asks_its_engine_greedily_and_maps_its_answer() -> None:
    engine = FakeEngine(["unsafe\n", "S9"])
    guard = Guard(GuardSettings(model="guard"), engine)
    hits = await guard.check([{"role": "user", "content": "anything"}])
    assert hits is not None and [h.risk for h in hits] == ["A.1.4"]
    assert await Guard(GuardSettings(model="guard"), FakeEngine(["safe"])).check([]) == []


@pytest.mark.anyio
async def test_a_guard_that_cannot_answer_gives_none_in_time() -> None:
    settings = GuardSettings(model="guard", timeout=0.05)
    assert await Guard(settings, _Stalled(["safe"])).check([]) is None  # its timeout, not 10 s
    assert await Guard(settings, _Failing(["safe"])).check([]) is None
