"""A bounded, fair queue in front of an engine's generation slots.

Waiters are grouped by tenant (an organisation) and served round-robin across tenants, first
come first served within one, so a client that floods the queue delays itself, not everyone
else; tenants of a higher priority (a paid plan's) go before all tenants of a lower one. When
the queue is full a new request is refused at once (the caller answers 503 with Retry-After)
instead of waiting without bound.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from typing import Generic, TypeVar

from .errors import Overloaded

Slot = TypeVar("Slot")


class FairQueue(Generic[Slot]):
    def __init__(self, slots: list[Slot], max_waiting: int, retry_after: int = 1) -> None:
        self._free: deque[Slot] = deque(slots)
        self._capacity = len(slots)
        self._max_waiting = max_waiting
        self._retry_after = retry_after
        # priority -> tenant -> its waiters, oldest first; each OrderedDict's order is the
        # round-robin turn among that priority's tenants
        self._waiting: dict[int, OrderedDict[str, deque[asyncio.Future[Slot]]]] = {}
        self._n_waiting = 0

    @property
    def waiting(self) -> int:
        return self._n_waiting

    @property
    def busy(self) -> int:
        return self._capacity - len(self._free)

    async def acquire(self, tenant: str, priority: int = 0) -> Slot:
        if self._free and not self._n_waiting:
            return self._free.popleft()
        if self._n_waiting >= self._max_waiting:
            raise Overloaded(
                "The engine is busy and its queue is full; retry shortly.",
                headers={"Retry-After": str(self._retry_after)},
            )
        future: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        turn = self._waiting.setdefault(priority, OrderedDict())
        turn.setdefault(tenant, deque()).append(future)
        self._n_waiting += 1
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                # granted in the same instant as cancelled: pass the slot on
                self.release(future.result())
            else:
                self._forget(priority, tenant, future)
            raise

    def release(self, slot: Slot) -> None:
        while self._waiting:
            priority = max(self._waiting)
            turn = self._waiting[priority]
            tenant, waiters = next(iter(turn.items()))
            future = waiters.popleft()
            self._n_waiting -= 1
            if waiters:
                turn.move_to_end(tenant)  # this tenant's turn is over
            else:
                del turn[tenant]
                if not turn:
                    del self._waiting[priority]
            if not future.done():
                future.set_result(slot)
                return
        self._free.append(slot)

    def _forget(self, priority: int, tenant: str, future: asyncio.Future[Slot]) -> None:
        turn = self._waiting.get(priority, OrderedDict())
        waiters = turn.get(tenant)
        if waiters is None or future not in waiters:
            return
        waiters.remove(future)
        self._n_waiting -= 1
        if not waiters:
            del turn[tenant]
            if not turn:
                del self._waiting[priority]
