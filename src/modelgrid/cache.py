"""A cache for the request path: entries remembered for a while, one look-up per entry at a
time, and forgotten as soon as the change feed names them.

Keys (storage/keys.py) and each account's credits granted (metering.py) are read on every
request and change rarely; both are held here, so that requests skip the database while a
change made anywhere still takes effect within the change feed's interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from itertools import islice
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class SingleFlightCache(Generic[K, V]):
    """``load(key)`` results, remembered ``seconds`` (none when 0) when ``keep(value)``.

    At most ``limit`` entries: past it the oldest tenth goes, where an entry's age is that of
    its last load (the dict's order). Requests that arrive while an entry is being loaded
    share that load instead of each queueing for the database.
    """

    def __init__(
        self,
        load: Callable[[K], Awaitable[V]],
        seconds: float,
        limit: int,
        keep: Callable[[V], bool] = lambda _: True,
    ) -> None:
        self._load = load
        self.seconds = seconds
        self.limit = limit
        self._keep = keep
        self._entries: dict[K, tuple[float, V]] = {}  # key -> (expiry, value)
        self._pending: dict[K, asyncio.Future[V]] = {}
        # Bumped by every change: a load that a change overtook is not kept, since it may
        # have read the row before the change.
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    @property
    def loading(self) -> bool:
        return bool(self._pending)

    async def get(self, key: K) -> V:
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._fill(key, self._generation))
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        # Shielded: one waiter's cancellation (a client gone) must not cancel the others'.
        return await asyncio.shield(pending)

    async def _fill(self, key: K, generation: int) -> V:
        value = await self._load(key)
        self._entries.pop(key, None)  # stale, or to the end: the dict's order is the age
        if self.seconds > 0 and generation == self._generation and self._keep(value):
            if len(self._entries) >= self.limit:
                for oldest in list(islice(self._entries, max(1, self.limit // 10))):
                    del self._entries[oldest]
            self._entries[key] = (time.monotonic() + self.seconds, value)
        return value

    def forget(self, key: K) -> None:
        self._generation += 1
        self._entries.pop(key, None)

    def forget_where(self, match: Callable[[V], bool]) -> None:
        self._generation += 1
        for key in [k for k, (_, value) in self._entries.items() if match(value)]:
            del self._entries[key]

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
