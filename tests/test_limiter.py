"""The limiter backends: in-process, and Redis shared by replicas."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from modelgrid.limiter import Limiter, MemoryLimiter, RedisLimiter

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> Limiter:
    if request.param == "memory":
        return MemoryLimiter()
    url: str = request.getfixturevalue("redis_url")
    return RedisLimiter(url, prefix=f"test:{uuid.uuid4().hex}:")


async def test_limit_holds_under_concurrency(limiter: Limiter) -> None:
    try:
        decisions = await asyncio.gather(*(limiter.hit("k", 10) for _ in range(50)))
        assert sum(d.allowed for d in decisions) == 10
        refused = [d for d in decisions if not d.allowed]
        assert all(0 < d.retry_after <= 6.0 for d in refused)  # one interval: 60 s / 10
        assert sorted(d.remaining for d in decisions if d.allowed) == list(range(10))
        other = await limiter.hit("another-key", 10)
        assert other.allowed
    finally:
        await limiter.close()


async def test_replicas_sharing_redis_share_the_limit(redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex}:"
    replicas = [RedisLimiter(redis_url, prefix=prefix) for _ in range(3)]
    try:
        decisions = await asyncio.gather(*(replicas[i % 3].hit("k", 6) for i in range(30)))
        assert sum(d.allowed for d in decisions) == 6  # not 18
    finally:
        for replica in replicas:
            await replica.close()


async def test_concurrency_slots_are_taken_and_handed_back(limiter: Limiter) -> None:
    try:
        tokens = await asyncio.gather(*(limiter.acquire("c", 3) for _ in range(10)))
        held = [t for t in tokens if t is not None]
        assert len(held) == 3
        await limiter.release("c", held[0])
        assert await limiter.acquire("c", 3) is not None
        assert await limiter.acquire("c", 3) is None
    finally:
        await limiter.close()


async def test_a_lease_not_handed_back_expires(limiter: Limiter) -> None:
    try:
        assert await limiter.acquire("lost", 1, lease=0.2) is not None
        assert await limiter.acquire("lost", 1, lease=0.2) is None
        await asyncio.sleep(0.25)  # the lease, and no longer
        assert await limiter.acquire("lost", 1, lease=0.2) is not None
    finally:
        await limiter.close()


async def test_costs_are_counted_atomically(limiter: Limiter) -> None:
    try:
        decisions = await asyncio.gather(*(limiter.hit("t", 100, cost=30) for _ in range(10)))
        assert sum(d.allowed for d in decisions) == 3  # 90 of 100; a fourth would make 120
    finally:
        await limiter.close()
