"""Quota counters, in-process and in Redis: all or nothing, and never past a cap."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from modelgrid.counters import Counters, MemoryCounters, RedisCounters

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "redis"])
def counters(request: pytest.FixtureRequest) -> Counters:
    if request.param == "memory":
        return MemoryCounters()
    url: str = request.getfixturevalue("redis_url")
    return RedisCounters(url, prefix=f"test:{uuid.uuid4().hex}:")


async def test_missing_counters_are_reported_not_taken_as_zero(counters: Counters) -> None:
    try:
        outcome = await counters.reserve(["a", "b"], [1, 1], [10, 10])
        assert (outcome.status, outcome.index) == ("missing", 0)
        await counters.load("a", 3, ttl=60)
        await counters.load("a", 100, ttl=60)  # loads only what does not exist
        outcome = await counters.reserve(["a", "b"], [1, 1], [10, 10])
        assert (outcome.status, outcome.index) == ("missing", 1)
        assert await counters.get("a") == 3
    finally:
        await counters.close()


async def test_reservations_are_all_or_nothing(counters: Counters) -> None:
    try:
        await counters.load("day", 0, ttl=60)
        await counters.load("month", 95, ttl=0)
        refused = await counters.reserve(["day", "month"], [10, 10], [50, 100])
        assert (refused.status, refused.index) == ("refused", 1)
        assert [await counters.get("day"), await counters.get("month")] == [0, 95]
        assert (await counters.reserve(["day", "month"], [5, 5], [50, 100])).status == "ok"
        assert [await counters.get("day"), await counters.get("month")] == [5, 100]
        await counters.adjust(["day", "month", "gone"], [-2, -3, 7])
        assert [await counters.get(k) for k in ("day", "month", "gone")] == [3, 97, None]
    finally:
        await counters.close()


async def test_concurrent_reservations_never_pass_the_cap(counters: Counters) -> None:
    try:
        await counters.load("q", 0, ttl=60)
        outcomes = await asyncio.gather(*(counters.reserve(["q"], [7], [1000]) for _ in range(200)))
        granted = sum(o.status == "ok" for o in outcomes)
        assert granted == 1000 // 7
        assert await counters.get("q") == granted * 7
    finally:
        await counters.close()


async def test_replicas_sharing_redis_share_the_counter(redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    replicas = [RedisCounters(redis_url, prefix=prefix) for _ in range(3)]
    try:
        await replicas[0].load("q", 0, ttl=60)
        outcomes = await asyncio.gather(
            *(replicas[i % 3].reserve(["q"], [10], [1000]) for i in range(300))
        )
        assert sum(o.status == "ok" for o in outcomes) == 100
    finally:
        for replica in replicas:
            await replica.close()


async def test_memory_counters_expire() -> None:
    now = [1000.0]
    counters = MemoryCounters(clock=lambda: now[0])
    await counters.load("day", 5, ttl=10)
    await counters.load("forever", 5, ttl=0)
    now[0] += 11
    assert await counters.get("day") is None and await counters.get("forever") == 5


async def test_reservations_of_a_dead_replica_are_handed_back(redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    dead, alive = RedisCounters(redis_url, prefix=prefix), RedisCounters(redis_url, prefix=prefix)
    try:
        await dead.start()
        await dead.load("q", 0, ttl=60)
        held = [await dead.reserve(["q"], [10], [1000]) for _ in range(3)]
        await dead.adjust(["q"], [-4], held[0].token)  # one settled (6 used), two still held
        assert await dead.get("q") == 26
        await alive.start()
        assert await alive.reconcile() == 0  # its heartbeat still beats
        # It dies: no settlement, and its heartbeat stops (here: at once, not in 30 s).
        await dead._redis.delete(f"{prefix}alive:{dead.replica}")
        assert await alive.reconcile() == 2
        assert await alive.get("q") == 6
        assert await alive.reconcile() == 0  # handed back once
    finally:
        await dead.close()
        await alive.close()
