"""Where quota and credit counters live: in this process, or in Redis for every replica.

A reservation checks every counter a request touches and adds to all of them, or to none,
in one atomic step (a Lua script on Redis), so concurrent requests can never together pass
a cap. A counter that does not exist yet (first use, a new day, Redis restarted) is reported
missing rather than taken as zero: the caller loads it from the ledger and tries again.

In Redis, each reservation is also recorded under its replica until it settles, and each
replica keeps a heartbeat; a replica that died holding reservations (``kill -9``, a lost
machine) has them handed back by whichever replica next reconciles (at start-up and every
``RECONCILE_SECONDS``). A settlement updates the counters before its ledger entry is written,
so a reservation still recorded is one whose request left no entry: handing it back whole is
exact.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from .redis_pool import connect

log = logging.getLogger("modelgrid.counters")

HEARTBEAT_SECONDS = 10
RECONCILE_SECONDS = 30


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Literal["ok", "refused", "missing"]
    index: int = -1  # the counter refused or missing
    token: str = ""  # the reservation, to settle


OK = Outcome("ok")

# KEYS: the counters, then the replica's reservations hash; ARGV: an amount and a cap per
# counter, then the reservation's token.
_RESERVE_LUA = """
local n = #KEYS - 1
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 0 then return {2, i - 1} end
end
for i = 1, n do
  local value = tonumber(redis.call('GET', KEYS[i]))
  if value + tonumber(ARGV[2 * i - 1]) > tonumber(ARGV[2 * i]) then return {1, i - 1} end
end
local held = {}
for i = 1, n do
  redis.call('INCRBY', KEYS[i], ARGV[2 * i - 1])
  held[i] = {KEYS[i], tonumber(ARGV[2 * i - 1])}
end
redis.call('HSET', KEYS[n + 1], ARGV[2 * n + 1], cjson.encode(held))
return {0, -1}
"""

# KEYS: the counters, then the reservations hash; ARGV: a delta per counter, then the token.
# A counter gone since (expired, Redis restarted) is left alone: when next loaded from the
# ledger it includes this request.
_ADJUST_LUA = """
local n = #KEYS - 1
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBY', KEYS[i], ARGV[i]) end
end
redis.call('HDEL', KEYS[n + 1], ARGV[n + 1])
return 0
"""

# KEYS: a dead replica's reservations hash. Hands every reservation back, then forgets them.
_RELEASE_LUA = """
local released = 0
for _, held in ipairs(redis.call('HVALS', KEYS[1])) do
  for _, pair in ipairs(cjson.decode(held)) do
    if redis.call('EXISTS', pair[1]) == 1 then redis.call('DECRBY', pair[1], pair[2]) end
  end
  released = released + 1
end
redis.call('DEL', KEYS[1])
return released
"""

_STATUS: dict[int, Literal["ok", "refused", "missing"]] = {0: "ok", 1: "refused", 2: "missing"}


class Counters(Protocol):
    async def start(self) -> None: ...

    async def reserve(
        self, keys: Sequence[str], amounts: Sequence[int], caps: Sequence[int]
    ) -> Outcome:
        """Add each amount to its counter if every counter stays within its cap."""

    async def adjust(self, keys: Sequence[str], deltas: Sequence[int], token: str = "") -> None:
        """Add (or, negative, take back) each delta, to counters that exist; the reservation
        ``token`` is settled."""

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

    async def start(self) -> None:
        pass  # reservations die with the process, and counters start again from the ledger

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

    async def adjust(self, keys: Sequence[str], deltas: Sequence[int], token: str = "") -> None:
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
        self._release = self._redis.register_script(_RELEASE_LUA)
        self._prefix = prefix
        self.replica = uuid.uuid4().hex
        self._held = f"{prefix}held:{self.replica}"
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._beat()
        await self.reconcile()
        self._task = asyncio.create_task(self._keep_alive())

    async def _beat(self) -> None:
        await self._redis.set(f"{self._prefix}alive:{self.replica}", 1, ex=3 * HEARTBEAT_SECONDS)

    async def _keep_alive(self) -> None:
        since = time.monotonic()
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self._beat()
                if time.monotonic() - since >= RECONCILE_SECONDS:
                    since = time.monotonic()
                    await self.reconcile()
            except Exception:  # Redis away for a while: try again next beat
                log.exception("counters: heartbeat failed")

    async def reconcile(self) -> int:
        """Hand back the reservations of replicas whose heartbeat has stopped; returns how
        many there were."""
        released = 0
        async for raw in self._redis.scan_iter(match=f"{self._prefix}held:*", count=1000):
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            replica = name.rsplit(":", 1)[1]
            if replica == self.replica or await self._redis.exists(
                f"{self._prefix}alive:{replica}"
            ):
                continue
            released += int(await self._release(keys=[name]))
        if released:
            log.warning("counters: reservations of stopped replicas handed back: %d", released)
        return released

    async def reserve(
        self, keys: Sequence[str], amounts: Sequence[int], caps: Sequence[int]
    ) -> Outcome:
        token = uuid.uuid4().hex
        args = [x for pair in zip(amounts, caps, strict=True) for x in pair] + [token]
        full = [self._prefix + k for k in keys] + [self._held]
        status, index = await self._reserve(keys=full, args=args)
        kind = _STATUS[int(status)]
        return Outcome(kind, int(index), token if kind == "ok" else "")

    async def adjust(self, keys: Sequence[str], deltas: Sequence[int], token: str = "") -> None:
        if keys:
            full = [self._prefix + k for k in keys] + [self._held]
            await self._adjust(keys=full, args=[*deltas, token])

    async def load(self, key: str, value: int, ttl: int) -> None:
        await self._redis.set(self._prefix + key, value, nx=True, ex=ttl or None)

    async def get(self, key: str) -> int | None:
        value = await self._redis.get(self._prefix + key)
        return None if value is None else int(value)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self._redis.aclose()
