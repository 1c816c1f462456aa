"""The ledger's housekeeping, in the background of every server: roll up the hour just ended,
and once a day prune raw entries, and stored conversations, past their retention.

It rolls up at start-up, then a little after each hour boundary (so that entries settled in
the hour's last moments, and flushed up to a flush interval later, are in). Every replica runs
it: a roll-up is safe to run anywhere at any time (see storage/rollups.py), and pruning deletes
the same rows whoever runs it. A failure is logged and tried again at the next round; it never
reaches the server, since every sum reads raw entries until they are rolled up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from .storage.contents import ContentStore
from .storage.database import Database
from .storage.rollups import prune, roll_up
from .storage.usage import HOUR, floor_hour

log = logging.getLogger("modelgrid.housekeeping")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Housekeeping:
    def __init__(
        self,
        db: Database,
        retention_days: int,
        # Or a function giving it when the prune runs: plans set through the API count too.
        plan_retention_days: Mapping[str, int] | Callable[[], Mapping[str, int]],
        clock: Callable[[], datetime] = utc_now,
        delay: float = 30.0,  # seconds after each hour boundary
        prune_every: timedelta = timedelta(days=1),
        contents: ContentStore | None = None,
        content_retention_days: int = 0,  # 0: stored conversations are kept for ever
    ) -> None:
        self._db = db
        self._retention_days = retention_days
        fixed = plan_retention_days
        self._plan_days: Callable[[], Mapping[str, int]] = (
            fixed if callable(fixed) else (lambda: fixed)
        )
        self._clock = clock
        self._delay = delay
        self._prune_every = prune_every
        self._contents = contents
        self._content_days = content_retention_days
        self._pruned_at: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ledger-housekeeping")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()  # a roll-up cut short rolls back whole
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> None:
        """One round: roll up, then prune if a day has passed since this process last did."""
        now = self._clock()
        try:
            counted = await roll_up(self._db, now)
            if counted:
                log.info("ledger rolled up", extra={"entries": counted})
        except Exception:
            log.exception("ledger roll-up failed; retrying next hour")
            return  # pruning waits for a roll-up, which it depends on
        if self._pruned_at is not None and now - self._pruned_at < self._prune_every:
            return
        try:
            deleted = await prune(self._db, now, self._retention_days, dict(self._plan_days()))
            self._pruned_at = now
            if deleted:
                log.info("ledger pruned", extra={"entries": deleted})
        except Exception:
            log.exception("ledger pruning failed; retrying next hour")
            return
        if self._contents is None or self._content_days == 0:
            return
        try:
            removed = await self._contents.prune(now - timedelta(days=self._content_days))
            if removed:
                log.info("stored conversations pruned", extra={"responses": removed})
        except Exception:
            log.exception("pruning stored conversations failed; retrying tomorrow")

    def seconds_to_next_round(self) -> float:
        now = self._clock()
        return (floor_hour(now) + HOUR - now).total_seconds() + self._delay

    async def _run(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self.seconds_to_next_round())
