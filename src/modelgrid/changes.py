"""The change feed: what changed in the database since the last look, so that caches on the
request path (keys, credits granted) can keep what they read for minutes and still follow a
revocation, a plan change or a top-up within a second, on every replica.

Every server reads the changes table (written by triggers, migration 0015) once every
``interval`` seconds: one small query, however many keys and accounts are active. Before, each
active key and each billed account was read again every second, so reads grew with the
callers (about 100 a second at 50 keys, docs/benchmarks.md).

PostgreSQL hands out ids when a row is inserted, not when its transaction commits, so a
change can appear after one with a higher id has been read. The ids skipped over are kept as
holes and asked for again until they appear, or until ``hole_seconds`` have passed (a
rolled-back transaction leaves its id unused for ever).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .storage.changes import Change, ChangeStore

log = logging.getLogger("modelgrid.changes")

Listener = Callable[[str], None]
# Ids asked for again at most: transactions in flight at once, with room.
MAX_HOLES = 1000


@dataclass(frozen=True, slots=True)
class Cursor:
    """How far the feed has read: the newest id seen, and the ids below it not yet seen with
    when each was first missed."""

    last: int
    holes: dict[int, float] = field(default_factory=dict)


def advance(cursor: Cursor, seen: Iterable[int], now: float, hole_seconds: float) -> Cursor:
    """The cursor after reading ``seen`` (ids past ``cursor.last`` or among its holes) at
    ``now``: new gaps become holes, filled holes go, holes older than ``hole_seconds`` are
    given up."""
    holes = {i: t for i, t in cursor.holes.items() if now - t < hole_seconds}
    last = cursor.last
    for ident in sorted(seen):
        holes.pop(ident, None)
        if ident > last:
            holes.update((gap, now) for gap in range(max(last + 1, ident - MAX_HOLES), ident))
            last = ident
    if len(holes) > MAX_HOLES:  # the newest are the likeliest to be still in flight
        holes = dict(sorted(holes.items())[-MAX_HOLES:])
    return Cursor(last, holes)


class ChangeFeed:
    def __init__(
        self,
        store: ChangeStore,
        interval: float = 1.0,
        hole_seconds: float = 60.0,
        keep: timedelta = timedelta(days=1),
    ) -> None:
        self._store = store
        self._interval = interval
        self._hole_seconds = hole_seconds
        self._keep = keep
        self._listeners: dict[str, list[Listener]] = {}
        self._cursor = Cursor(0)
        self._pruned_at = 0.0
        self._read_at = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    @property
    def polling(self) -> bool:
        return self._interval > 0

    def age(self) -> float:
        """Seconds since the feed was last read (or started)."""
        return time.monotonic() - self._read_at

    def listen(self, topic: str, listener: Listener) -> None:
        """Call ``listener`` with the subject of each change on ``topic``."""
        self._listeners.setdefault(topic, []).append(listener)

    async def start(self) -> None:
        """Read from the newest change on: caches start empty, so what came before is in
        whatever they read."""
        self._cursor = Cursor(await self._store.latest())
        self._read_at = time.monotonic()
        if self._interval > 0:
            self._task = asyncio.create_task(self._poll(), name="change-feed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        failing_since: float | None = None
        quiet_until = 0.0  # while failing: one traceback a minute, not one a second
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.read()
                await self._prune()
            except Exception:  # the database away for a while: caches keep what they have
                now = time.monotonic()
                failing_since = now if failing_since is None else failing_since
                if now >= quiet_until:
                    log.exception("change feed: read failed; cached keys and credits stay")
                    quiet_until = now + 60
                continue
            if failing_since is not None:
                outage = time.monotonic() - failing_since
                log.warning("change feed: read again after %.0f s of failures", outage)
                failing_since, quiet_until = None, 0.0

    async def read(self) -> list[Change]:
        """Read the changes since the last read and tell their listeners."""
        found = await self._store.since(self._cursor.last, self._cursor.holes)
        self._read_at = time.monotonic()
        self._cursor = advance(
            self._cursor, (c.id for c in found), self._read_at, self._hole_seconds
        )
        for change in found:
            for listener in self._listeners.get(change.topic, ()):
                listener(change.subject)
        return found

    async def _prune(self) -> None:
        """Once an hour, changes older than ``keep`` go (every replica may do it: the same
        rows go whoever does)."""
        if time.monotonic() - self._pruned_at < 3600:
            return
        self._pruned_at = time.monotonic()
        await self._store.prune(datetime.now(UTC) - self._keep)
