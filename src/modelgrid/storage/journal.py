"""A crash journal in front of batched database writes (the ledger's and the audit log's).

The request path only calls ``append``: a line copied into this process's journal segment (a
file mapped into memory, segment.py) and kept in memory. A background task hands what is
pending to ``commit`` (one transaction) every ``flush_interval`` seconds and then deletes the
segments it came from.

Durability: the journal is not fsynced. A line copied into the segment is in the kernel's page
cache, so it survives the process being killed (kill -9, the OOM killer, a crash), which is the
failure guarded against here; a power loss or kernel panic may lose the last few seconds. The next
``start()`` in the same directory replays segments whose owner is gone (their ``flock`` is free)
and deletes them once committed. ``commit`` must therefore ignore items already committed: a
replayed segment may have been partly or wholly committed before its owner died.

With ``forward``, pending items are kept as their journal lines and handed to another process
(the server's writer process, writer.py) to decode and commit: the commit's Python then runs
beside the event loop, not between its requests. When that process cannot take them
(``HandOffUnavailable``), they are decoded and committed here as without it. The lines wait in
one buffer, not as an object apiece: a busy server holds tens of thousands of them for the
seconds a batch takes, and as separate blocks they fragmented the heap it was freed into
(docs/benchmarks.md); the buffer, past the allocator's mmap threshold, comes and goes whole.
A backlog is handed over in pieces of at most ``PIECE_BYTES``, each committed on its own: the
process decoding a batch never holds more than a piece's objects, however far behind it is.

The backlog is bounded: with ``max_backlog``, once that many bytes of lines wait uncommitted,
``full`` is true until a commit brings them under it, and ``room()`` waits for that. Appends
never wait (a request that has been served must be recorded); it is for the caller to hold
new requests back (journals.py), so that a database slower than the requests arriving, or
down, makes the server slower, not its memory and its journal's segments grow without end.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

from .segment import SMALLEST, Segment, next_size

T = TypeVar("T")
# Hands over journal lines, each ending in a newline, to be committed elsewhere.
Forward = Callable[[memoryview], Awaitable[None]]
# The most handed over at once (a longer line goes whole): a batch's objects in the process
# that decodes it stay in proportion to this, whatever the backlog. A second's lines under
# full load are well under it, so only a backlog is cut up.
PIECE_BYTES = 8 * 1024 * 1024

# Across Journal instances too, so two in one process never pick the same name.
_segment_numbers = itertools.count()


class HandOffUnavailable(ConnectionError):
    """Raised by a ``forward`` that cannot take a batch now: the journal commits it itself."""


class Journal(Generic[T]):
    def __init__(
        self,
        directory: Path,
        *,
        encode: Callable[[T], bytes],  # one line, without a newline
        decode: Callable[[bytes], T],  # raises ValueError, TypeError or KeyError on a bad line
        commit: Callable[[list[T]], Awaitable[None]],
        describe: Callable[[T], str],  # names an item in a log message, e.g. "request req-1"
        log: logging.Logger,
        name: str,  # prefixes log messages and names the flush task
        flush_interval: float,
        prefix: str = "journal",  # segments are <prefix>-<pid>-<n>-<random>.jsonl
        forward: Forward | None = None,
        max_backlog: int = 0,  # bytes; 0: no bound
        piece_bytes: int = PIECE_BYTES,
    ) -> None:
        self._dir = Path(directory)
        self._encode, self._decode, self._commit = encode, decode, commit
        self._describe, self._log, self._name = describe, log, name
        self._flush_interval = flush_interval
        self._prefix = prefix
        self._forward = forward
        # One of the two holds what is pending: items without ``forward``; with it, their
        # lines, each ending in a newline, and how many.
        self._pending: list[T] = []
        self._held = bytearray()
        self._held_count = 0
        self._handing = 0  # lines handed over and not yet committed (during a flush)
        self._backlog = 0  # bytes of the lines appended and not yet committed
        self._max_backlog = max_backlog
        self._piece_bytes = piece_bytes
        self._roomy = asyncio.Event()  # set by a commit that brought the backlog under its bound
        self._handed_back = False  # a batch forward could not take was committed here
        # Segments whose items are all pending or committed but which are not yet deleted;
        # their fds stay open so the flock tells other processes they are not orphans.
        self._uncommitted: dict[Path, Segment] = {}
        self._segment: Segment | None = None  # where appends go; None before start()
        self._unmapped_logged = False
        self._lock = asyncio.Lock()
        # Flushes begun and ended, and how the last ended: flush() tells whether one began
        # after its caller asked.
        self._flushes_started = self._flushes_done = 0
        self._flushed = True
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._quiet_until = 0.0
        self.replayed = 0

    @property
    def pending(self) -> int:
        """Items appended but not yet committed, those being handed over included."""
        return len(self._pending) + self._held_count + self._handing

    @property
    def backlog(self) -> int:
        """Bytes of journal lines appended but not yet committed."""
        return self._backlog

    @property
    def full(self) -> bool:
        """The backlog is at its bound: new work should wait for ``room()``."""
        return 0 < self._max_backlog <= self._backlog

    async def room(self) -> None:
        """Return once the backlog is under its bound (at once when it is)."""
        while self.full:
            self._roomy.clear()
            await self._roomy.wait()

    def append(self, item: T) -> None:
        if self._segment is None:
            raise RuntimeError(f"{self._name}: append() before start() or after close()")
        line = self._encode(item) + b"\n"
        try:
            if not self._segment.append(line):  # full: the rest goes to a larger one
                self._rotate(max(self._segment.size, len(line)))
                self._segment.append(line)
        except OSError:
            # A full disk must not fail the request: the item is still committed from memory
            # unless the process also dies before the next flush.
            self._log.exception("%s: could not journal %s", self._name, self._describe(item))
        self._backlog += len(line)
        if self._forward is None:
            self._pending.append(item)
        else:
            self._held += line
            self._held_count += 1

    async def commit_lines(self, lines: list[bytes]) -> None:
        """Decode and commit journal lines handed over by another process's ``forward``;
        unreadable ones are logged and skipped, as in a replay."""
        items = [item for _, item in self._readable(lines, "a batch handed over")]
        if items:
            await self._commit(items)

    def _readable(self, lines: Iterable[bytes], where: str) -> Iterator[tuple[bytes, T]]:
        """Each line that decodes, with its item; one that does not is logged (``where``:
        what the lines are) and skipped, so that it never holds up the ones behind it."""
        for number, line in enumerate(lines, 1):
            try:
                item = self._decode(line)
            except (ValueError, TypeError, KeyError):
                self._log.error("%s: skipping unreadable line %d of %s", self._name, number, where)
                continue
            yield line, item

    async def start(self) -> None:
        """Recover what dead processes left in the journal, then begin journaling and flushing."""
        self._dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(self._dir.glob(f"{self._prefix}-*.jsonl")):
            self._adopt(path)
        self._segment = self._new_segment(SMALLEST)
        if self.pending or self._uncommitted:
            await self.flush()  # a failure is logged; the task retries
        self._task = asyncio.create_task(self._run(), name=f"{self._name}-flush")

    async def flush(self) -> bool:
        """Commit the pending items now; False (logged) when the database refused them, in
        which case they stay pending and journaled, and the next flush retries.

        Callers that arrive while a flush is under way share the next one (a group commit):
        it starts after each of them called, so it covers what each appended. Before, each
        waited its turn and then committed on its own, a transaction apiece; readers that
        need the pending items counted (a quota counter loading from the ledger) arrive
        together when many accounts are new at once."""
        wanted = self._flushes_started + 1
        async with self._lock:
            if self._flushes_done >= wanted:
                return self._flushed
            self._flushes_started += 1
            self._flushed = await self._flush()
            self._flushes_done = self._flushes_started
            return self._flushed

    async def _flush(self) -> bool:
        if self._segment is None:
            return not self.pending  # closed, or never started: nothing to swap or write
        try:
            if self._segment.lines:
                # Later appends go to a fresh segment, so the old one can be deleted as soon
                # as what it holds is committed.
                self._rotate(self._segment.used)
            done = dict(self._uncommitted)
            count = await self._hand_over()
        except Exception:
            if not self._failing or time.monotonic() >= self._quiet_until:
                self._log.exception(
                    "%s: %d entries not committed; retrying", self._name, self.pending
                )
                self._quiet_until = time.monotonic() + 30  # one traceback per outage, not 20/s
            self._failing = True
            return False
        for path, segment in done.items():
            segment.remove()
            del self._uncommitted[path]
        if self._failing:
            self._log.warning("%s: committed %d entries after earlier failures", self._name, count)
            self._failing = False
        return True

    async def _hand_over(self) -> int:
        """Commit what is pending, here or through ``forward``; how many items went. They
        leave the pending list only once committed; what was appended meanwhile stays."""
        if self._forward is None:
            size = self._backlog  # every line pending now is in this batch
            items = self._pending[:]
            if items:
                await self._commit(items)
            del self._pending[: len(items)]
            self._committed(size)
            return len(items)
        held, count = self._held, self._held_count
        if not count:
            return 0
        # Never changed once handed over (a transport may still be reading it): appends go
        # to a new buffer, and what fails goes back in front of them as a copy. A backlog
        # goes in pieces, each committed on its own, in order; the first that fails stops it.
        # They still count as pending until committed: a reader that flushes only when
        # something is pending (a receipt) must not find them neither pending nor stored.
        self._held, self._held_count, self._handing = bytearray(), 0, count
        done = 0
        try:
            while done < len(held):
                end = piece_end(held, done, self._piece_bytes)
                await self._hand_piece(memoryview(held)[done:end])
                self._committed(end - done)
                self._handing -= held.count(b"\n", done, end)
                done = end
        except BaseException:
            rest = held[done:]
            self._held = rest + self._held
            self._held_count += rest.count(b"\n")
            raise
        finally:
            self._handing = 0
        return count

    async def _hand_piece(self, lines: memoryview) -> None:
        assert self._forward is not None
        try:
            await self._forward(lines)
            self._handed_back = False
        except HandOffUnavailable as e:
            if not self._handed_back:
                self._log.warning("%s: committing here: %s", self._name, e)
            self._handed_back = True
            await self.commit_lines(split_lines(lines))

    def _committed(self, size: int) -> None:
        self._backlog -= size
        if not self.full:
            self._roomy.set()

    async def close(self) -> None:
        """Stop flushing, commit what is pending, and remove the journal if all of it committed;
        otherwise the segments stay for the next start() to replay."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._segment is None:
            return
        committed = await self.flush()
        while committed and self.pending:  # appended while that flush waited on the database
            committed = await self.flush()
        # No await from here on, so nothing is appended to a segment being removed.
        last, self._segment = self._segment, None
        if last.lines:
            last.close()  # for the next start to replay
        else:
            last.remove()
        for segment in self._uncommitted.values():
            segment.close()
        self._uncommitted.clear()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval)
            if self.pending or self._uncommitted:
                await self.flush()

    def _new_segment(self, size: int) -> Segment:
        name = f"{self._prefix}-{os.getpid()}-{next(_segment_numbers)}-{os.urandom(4).hex()}.jsonl"
        segment = Segment.create(self._dir, name, size)
        if not segment.mapped and not self._unmapped_logged:
            self._unmapped_logged = True
            self._log.warning("%s: journal segments not mapped; writing them", self._name)
        return segment

    def _rotate(self, used: int) -> None:
        """Later appends go to a new segment, sized after ``used`` bytes; the current one
        waits, unmapped, until what it holds is committed."""
        assert self._segment is not None
        old, self._segment = self._segment, self._new_segment(next_size(used))
        old.release()
        self._uncommitted[old.path] = old

    def _adopt(self, path: Path) -> None:
        """Take over a dead process's segment: its items become pending here, and it is
        deleted once they are committed."""
        adopted = Segment.adopt(path)
        if adopted is None:
            return
        segment, lines = adopted
        # Decoded here in forward mode too: a bad line is skipped, not handed on.
        for line, item in self._readable(lines, path.name):
            if self._forward is None:
                self._pending.append(item)
            else:
                self._held += line + b"\n"
                self._held_count += 1
            self._backlog += len(line) + 1
            self.replayed += 1
        self._uncommitted[path] = segment


def piece_end(held: bytearray, start: int, most: int) -> int:
    """Where a piece of ``held``'s lines from ``start`` ends: after the last newline within
    ``most`` bytes, or after the first line when that line alone is longer."""
    if start + most >= len(held):
        return len(held)
    end = held.rfind(b"\n", start, start + most) + 1
    return end if end > start else held.index(b"\n", start + most) + 1


def split_lines(held: bytes | bytearray | memoryview) -> list[bytes]:
    """Lines that each end in a newline, without it."""
    lines = bytes(held).split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    return lines
