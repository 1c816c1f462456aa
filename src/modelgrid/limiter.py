"""Where rate-limit state lives: in this process, or in Redis so that every replica shares it.

Both run ``ratelimit.gcra``; the Redis one as a Lua script, so that reading and writing a key's
state is one atomic step however many replicas race for it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Protocol

from .ratelimit import Decision, gcra
from .redis_pool import connect

# GCRA in Lua; KEYS[1] holds the TAT in milliseconds since the epoch, as Redis's clock sees it
# (all replicas read the same clock). The key expires once its TAT has passed.
_GCRA_LUA = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local interval = period / limit
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - period
if allow_at > now then
  return {0, 0, allow_at - now, tat - now}
end
-- At least 1 ms: with a huge limit the step is below a float's resolution at this size.
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, math.ceil(new_tat - now)))
local remaining = math.floor((period - (new_tat - now)) / interval + 1e-9)
return {1, remaining, 0, new_tat - now}
"""


# Concurrency slots are leases: a replica that dies mid-request cannot hand its slots back, so
# each expires on its own after the longest a request may take.
LEASE_SECONDS = 900.0

# A sorted set of lease tokens scored by expiry: drop the expired, then take a slot if one is
# free; all in one step however many replicas race for it.
_ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""


class Limiter(Protocol):
    async def hit(self, key: str, limit: int, period: float = 60.0, cost: int = 1) -> Decision:
        """Count ``cost`` units (a request, or its tokens) against ``limit`` per ``period``."""

    async def acquire(self, key: str, limit: int, lease: float = LEASE_SECONDS) -> str | None:
        """A slot among ``limit`` concurrent ones (a token to release), or None when full."""

    async def release(self, key: str, token: str) -> None: ...

    async def close(self) -> None: ...


class MemoryLimiter:
    """One replica's counters. With several replicas each would admit the full limit: use
    Redis then (``redis_url``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._tat: dict[str, float] = {}
        self._leases: dict[str, dict[str, float]] = {}  # key -> token -> expiry
        self._clock = clock
        self._issued = 0

    async def hit(self, key: str, limit: int, period: float = 60.0, cost: int = 1) -> Decision:
        now = self._clock()
        decision, tat = gcra(self._tat.get(key, now), now, limit, period, cost)
        self._tat[key] = tat
        if len(self._tat) > 100_000:  # forget keys whose state has fully decayed
            self._tat = {k: v for k, v in self._tat.items() if v > now}
        return decision

    async def acquire(self, key: str, limit: int, lease: float = LEASE_SECONDS) -> str | None:
        now = self._clock()
        held = self._leases.setdefault(key, {})
        if len(held) >= limit:  # only then can expired leases matter
            for token in [t for t, expiry in held.items() if expiry <= now]:
                del held[token]
            if len(held) >= limit:
                return None
        self._issued += 1
        token = str(self._issued)  # unique within this process, which is all a lease needs here
        held[token] = now + lease
        return token

    async def release(self, key: str, token: str) -> None:
        held = self._leases.get(key)
        if held is not None:
            held.pop(token, None)
            if not held:
                del self._leases[key]

    async def close(self) -> None:
        pass


class RedisLimiter:
    def __init__(self, url: str, prefix: str = "modelgrid:rl:") -> None:
        self._redis = connect(url)
        self._script = self._redis.register_script(_GCRA_LUA)
        self._acquire = self._redis.register_script(_ACQUIRE_LUA)
        self._prefix = prefix

    async def hit(self, key: str, limit: int, period: float = 60.0, cost: int = 1) -> Decision:
        allowed, remaining, retry_ms, reset_ms = await self._script(
            keys=[self._prefix + key], args=[limit, int(period * 1000), cost]
        )
        return Decision(bool(allowed), limit, int(remaining), retry_ms / 1000, reset_ms / 1000)

    async def acquire(self, key: str, limit: int, lease: float = LEASE_SECONDS) -> str | None:
        token = uuid.uuid4().hex
        args: list[int | str] = [limit, int(lease * 1000), token]
        granted = await self._acquire(keys=[self._prefix + key], args=args)
        return token if granted else None

    async def release(self, key: str, token: str) -> None:
        await self._redis.zrem(self._prefix + key, token)

    async def close(self) -> None:
        await self._redis.aclose()
