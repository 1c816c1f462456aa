import asyncio

import pytest

from modelgrid.cache import SingleFlightCache

pytestmark = pytest.mark.anyio


class Source:
    """A loader that counts its reads and can be held mid-read."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.reads = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def load(self, key: str) -> int:
        self.reads += 1
        await self.gate.wait()
        return self.values.get(key, 0)


async def test_a_value_is_read_once_then_served_until_forgotten() -> None:
    source = Source()
    source.values["a"] = 1
    cache = SingleFlightCache(source.load, seconds=60, limit=10)
    assert await cache.get("a") == 1
    source.values["a"] = 2
    assert await cache.get("a") == 1 and source.reads == 1
    cache.forget("a")
    assert await cache.get("a") == 2 and source.reads == 2


async def test_zero_seconds_reads_every_time() -> None:
    source = Source()
    cache = SingleFlightCache(source.load, seconds=0, limit=10)
    for _ in range(3):
        await cache.get("a")
    assert source.reads == 3 and len(cache) == 0


async def test_an_entry_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("modelgrid.cache.time.monotonic", lambda: now[0])
    source = Source()
    cache = SingleFlightCache(source.load, seconds=5, limit=10)
    await cache.get("a")
    now[0] += 4.9
    await cache.get("a")
    assert source.reads == 1
    now[0] += 0.2
    await cache.get("a")
    assert source.reads == 2


async def test_callers_arriving_during_a_read_share_it() -> None:
    source = Source()
    source.gate.clear()
    cache = SingleFlightCache(source.load, seconds=60, limit=10)
    waiting = [asyncio.ensure_future(cache.get("a")) for _ in range(50)]
    await asyncio.sleep(0)
    assert cache.loading
    source.gate.set()
    assert await asyncio.gather(*waiting) == [0] * 50
    assert source.reads == 1 and not cache.loading


async def test_one_caller_cancelled_does_not_cancel_the_others() -> None:
    source = Source()
    source.gate.clear()
    cache = SingleFlightCache(source.load, seconds=60, limit=10)
    first, second = (asyncio.ensure_future(cache.get("a")) for _ in range(2))
    await asyncio.sleep(0)
    first.cancel()
    source.gate.set()
    assert await second == 0
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_failed_read_reaches_every_waiter_and_is_not_kept() -> None:
    calls = 0

    async def failing(key: str) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database away")
        return 7

    cache = SingleFlightCache(failing, seconds=60, limit=10)
    with pytest.raises(ConnectionError):
        await cache.get("a")
    assert not cache.loading and "a" not in cache
    assert await cache.get("a") == 7


async def test_a_read_overtaken_by_a_change_is_returned_but_not_kept() -> None:
    source = Source()
    source.gate.clear()
    cache = SingleFlightCache(source.load, seconds=60, limit=10)
    reading = asyncio.ensure_future(cache.get("a"))
    await asyncio.sleep(0)
    cache.forget("b")  # any change: the read may have seen the row before it
    source.gate.set()
    assert await reading == 0
    assert "a" not in cache
    await cache.get("a")
    assert "a" in cache


async def test_values_keep_refuses_are_not_kept_and_a_stale_entry_goes() -> None:
    source = Source()
    cache = SingleFlightCache(source.load, seconds=60, limit=10, keep=lambda v: v > 0)
    source.values["a"] = 1
    await cache.get("a")
    assert "a" in cache
    source.values["a"] = 0
    cache._entries["a"] = (0.0, 1)  # expired
    assert await cache.get("a") == 0
    assert "a" not in cache


async def test_bounded_the_oldest_tenth_goes_and_a_reread_entry_is_young_again() -> None:
    source = Source()
    cache = SingleFlightCache(source.load, seconds=60, limit=10)
    for i in range(10):
        await cache.get(str(i))
    cache.forget("0")  # re-read: it moves to the end
    await cache.get("0")
    await cache.get("10")
    assert len(cache) == 10
    assert "1" not in cache and "0" in cache and "10" in cache


async def test_forget_where_and_clear() -> None:
    source = Source()
    source.values.update(a=1, b=2, c=3)
    cache = SingleFlightCache(source.load, seconds=60, limit=10)
    for key in "abc":
        await cache.get(key)
    cache.forget_where(lambda v: v % 2 == 1)
    assert "b" in cache and "a" not in cache and "c" not in cache
    cache.clear()
    assert len(cache) == 0
