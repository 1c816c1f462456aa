"""Where quota and credit counters live: in this process, or in Redis for every replica.

A reservation checks every counter a request touches and adds to all of them, or to none,
in one atomic step (a Lua script on Redis), so concurrent requests can never together pass
a cap. A counter that does not exist yet (first use, a new day, Redis restarted) is reported
missing rather than taken as zero: the caller loads it from the ledger and tries again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from .redis_pool import connect


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Literal["ok", "refused", "missing"]
    index: int = -1  # the counter refused or missing


OK = Outcome("ok")

# KEYS: the counters; ARGV: an amount and a cap per counter.
_RESERVE_LUA = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then return {2, i - 1} end
end
for i = 1, #KEYS do
  local value = tonumber(redis.call('GET', KEYS[i]))
  if value + tonumber(ARGV[2 * i - 1]) > tonumber(ARGV[2 * i]) then return {1, i - 1} end
end
for i = 1, #KEYS do redis.call('INCRBY', KEYS[i], ARGV[2 * i - 1]) end
return {0, -1}
"""

# KEYS: the counters; ARGV: a delta per counter. A counter gone since (expired, Redis
# restarted) is left alone: when next loaded from the ledger it includes this request.
_ADJUST_LUA = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBY', KEYS[i], ARGV[i]) end
end
return 0
"""

_STATUS: dict[int, Literal["ok", "refused", "missing"]] = {0: "ok", 1: "refused", 2: "missing"}


class Counters(Protocol):
    async def reserve(
        self, keys: Sequence[str], amounts: Sequence[int], caps: Sequence[int]
    ) -> Outcome:
        """Add each amount to its counter if every counter stays within its cap."""

    async def adjust(self, keys: Sequence[str], deltas: Sequence[int]) -> None:
        """Add (or, negative, take back) each delta, to counters that exist."""

    async def load(self, key: str, value: int, ttl: int) -> None:
        """Create a counter at ``value`` unless it exists; it lives ``ttl`` s (0: for ever)."""

    async def get(self, key: str) -> int | None: ...

    async def close(self) -> None: ...


class MemoryCounters:
    """One process's counters: exact within it, but several workers would each allow the
    whole quota; the server refuses that setting (see ``Settings``)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._values: dict[str, int] = {}
        self._expiry: dict[str, float] = {}
        self._clock = clock

    def _live(self, key: str) -> bool:
        if key not in self._values:
            return False
        expiry = self._expiry.get(key)
        if expiry is not None and expiry <= self._clock():
            del self._values[key], self._expiry[key]
            return False
        return True

    async def reserve(
        self, keys: Sequence[str], amounts: Sequence[int], caps: Sequence[int]
    ) -> Outcome:
        # No await between the checks and the additions: atomic on the event loop.
        for i, key in enumerate(keys):
            if not self._live(key):
                return Outcome("missing", i)
        for i, (key, amount, cap) in enumerate(zip(keys, amounts, caps, strict=True)):
            if self._values[key] + amount > cap:
                return Outcome("refused", i)
        for key, amount in zip(keys, amounts, strict=True):
            self._values[key] += amount
        return OK

    async def adjust(self, keys: Sequence[str], deltas: Sequence[int]) -> None:
        for key, delta in zip(keys, deltas, strict=True):
            if self._live(key):
                self._values[key] += delta

    async def load(self, key: str, value: int, ttl: int) -> None:
        if self._live(key):
            return
        self._values[key] = value
        if ttl:
            self._expiry[key] = self._clock() + ttl
        if len(self._expiry) > 100_000:  # drop windows long past
            for stale in [k for k, e in self._expiry.items() if e <= self._clock()]:
                del self._values[stale], self._expiry[stale]

    async def get(self, key: str) -> int | None:
        return self._values[key] if self._live(key) else None

    async def close(self) -> None:
        pass


class RedisCounters:
    def __init__(self, url: str, prefix: str = "modelgrid:q:") -> None:
        self._redis = connect(url)
        self._reserve = self._redis.register_script(_RESERVE_LUA)
        self._adjust = self._redis.register_script(_ADJUST_LUA)
        self._prefix = prefix

    async def reserve(
        self, keys: Sequence[str], amounts: Sequence[int], caps: Sequence[int]
    ) -> Outcome:
        args = [x for pair in zip(amounts, caps, strict=True) for x in pair]
        status, index = await self._reserve(keys=[self._prefix + k for k in keys], args=args)
        return Outcome(_STATUS[int(status)], int(index))

    async def adjust(self, keys: Sequence[str], deltas: Sequence[int]) -> None:
        if keys:
            await self._adjust(keys=[self._prefix + k for k in keys], args=list(deltas))

    async def load(self, key: str, value: int, ttl: int) -> None:
        await self._redis.set(self._prefix + key, value, nx=True, ex=ttl or None)

    async def get(self, key: str) -> int | None:
        value = await self._redis.get(self._prefix + key)
        return None if value is None else int(value)

    async def close(self) -> None:
        await self._redis.aclose()
