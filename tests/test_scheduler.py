import asyncio

import pytest

from modelgrid.errors import Overloaded
from modelgrid.scheduler import FairQueue

pytestmark = pytest.mark.anyio


async def test_free_slot_is_taken_at_once() -> None:
    queue = FairQueue(["s"], max_waiting=0)
    assert await queue.acquire("a") == "s"
    assert queue.busy == 1


async def test_full_queue_refuses_with_retry_after() -> None:
    queue = FairQueue(["s"], max_waiting=1)
    await queue.acquire("a")
    waiter = asyncio.create_task(queue.acquire("a"))
    await asyncio.sleep(0)
    with pytest.raises(Overloaded) as refused:
        await queue.acquire("b")
    assert refused.value.status == 503
    assert refused.value.headers["Retry-After"] == "1"
    queue.release("s")
    assert await waiter == "s"


async def test_tenants_are_served_round_robin() -> None:
    queue = FairQueue(["s"], max_waiting=10)
    await queue.acquire("x")
    order: list[str] = []

    async def take(tenant: str) -> None:
        slot = await queue.acquire(tenant)
        order.append(tenant)
        queue.release(slot)

    # the flooding tenant "a" queues three requests before "b" and "c" queue one each
    tasks = [asyncio.create_task(take(t)) for t in ["a", "a", "a", "b", "c"]]
    await asyncio.sleep(0)
    queue.release("s")
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "c", "a", "a"]


async def test_cancelled_waiter_leaves_the_queue() -> None:
    queue = FairQueue(["s"], max_waiting=1)
    await queue.acquire("a")
    waiter = asyncio.create_task(queue.acquire("b"))
    await asyncio.sleep(0)
    assert queue.waiting == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert queue.waiting == 0
    queue.release("s")
    assert queue.busy == 0


async def test_slot_granted_to_a_cancelled_waiter_passes_on() -> None:
    queue = FairQueue(["s"], max_waiting=2)
    await queue.acquire("a")
    first = asyncio.create_task(queue.acquire("b"))
    second = asyncio.create_task(queue.acquire("c"))
    await asyncio.sleep(0)
    queue.release("s")  # granted to "b"...
    first.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == "s"


async def test_higher_priority_goes_first_then_round_robin_within_it() -> None:
    queue = FairQueue(["s"], max_waiting=10)
    await queue.acquire("x")
    order: list[str] = []

    async def take(tenant: str, priority: int) -> None:
        slot = await queue.acquire(tenant, priority)
        order.append(tenant)
        queue.release(slot)

    arrivals = [("free-a", 0), ("free-a", 0), ("free-b", 0), ("pro-a", 1), ("pro-b", 1), ("ent", 2)]
    tasks = [asyncio.create_task(take(t, p)) for t, p in arrivals]
    await asyncio.sleep(0)
    queue.release("s")
    await asyncio.gather(*tasks)
    assert order == ["ent", "pro-a", "pro-b", "free-a", "free-b", "free-a"]
    assert queue.waiting == 0 and queue.busy == 0
