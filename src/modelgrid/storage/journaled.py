"""What every store written through a ``Journal`` (ledger, audit log, stored conversations,
review queue) offers: the request path appends, a background task commits in batches."""

from __future__ import annotations

from typing import Generic, TypeVar

from .journal import Journal

T = TypeVar("T")


class Journaled(Generic[T]):
    _journal: Journal[T]

    @property
    def pending(self) -> int:
        """Items appended but not yet committed."""
        return self._journal.pending

    @property
    def replayed(self) -> int:
        """Items recovered from dead processes' journals by start()."""
        return self._journal.replayed

    @property
    def backlog(self) -> int:
        """Bytes of journal lines appended but not yet committed."""
        return self._journal.backlog

    @property
    def full(self) -> bool:
        """The backlog is at its bound: new requests should wait for ``room()``."""
        return self._journal.full

    async def room(self) -> None:
        """Return once the backlog is under its bound (at once when it is)."""
        await self._journal.room()

    def append(self, item: T) -> None:
        """Journal an item; it is committed within the flush interval. Never waits."""
        self._journal.append(item)

    async def start(self) -> None:
        """Commit what dead processes left in the journal, then begin journaling and flushing."""
        await self._journal.start()

    async def flush(self) -> bool:
        """Commit the pending items now; False (logged) when that failed, in which case they
        stay pending and journaled, and the next flush retries."""
        return await self._journal.flush()

    async def commit_lines(self, lines: list[bytes]) -> None:
        """Decode and commit journal lines another process handed over (writer.py)."""
        await self._journal.commit_lines(lines)

    async def close(self) -> None:
        await self._journal.close()
