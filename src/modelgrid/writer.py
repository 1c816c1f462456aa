"""The writer process: the journals' batches (ledger, audit log, stored conversations) committed
by a second process that the server starts beside itself (``writer_process``, on by default).

Each request appends a line to the ledger's journal and one to the stored conversations' (whose
commit also makes the response's audit leaf) or, for a response whose text is not kept, to the
audit log's (storage/journal.py); once a second the lines are committed in batches. Committed in
the server, that batch's Python (building rows, hashing responses for provenance and the audit
tree, SQLAlchemy's statements, the driver's thread) shared one interpreter lock with the event
loop and took turns with the requests in flight: about a fifth of the server's CPU under load
(docs/benchmarks.md). Here the server hands the lines over as they were journaled, and the
writer process decodes and commits them, on another core when there is one.

Nothing is lost to it: the lines stay in the server's journal segments until the writer says
they are committed, as they stay until the server's own commit does without it. If the writer
process dies or cannot be started, batches are committed in the server, as before, and a new
writer is tried a few seconds later; commits are idempotent, so a batch the writer committed
just before dying is not stored twice.

Frames on the child's stdin and stdout: a 4-byte big-endian length, then the payload. The
first is the pickled Settings; the child answers an empty frame once its stores are built.
Then each is ``<journal>\\n<line>\\n<line>\\n…``, committed in order and answered with an
empty frame (committed) or the error's traceback (not committed: the journal retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import struct
import sys
import time
from collections import deque
from dataclasses import dataclass, field

from .settings import Settings
from .storage.journal import HandOffUnavailable

log = logging.getLogger("modelgrid.writer")

FRAME = struct.Struct(">I")
RESTART_SECONDS = 5.0  # between a writer's death and the next try; batches commit here meanwhile
CLOSE_SECONDS = 30.0  # for the last batches at shutdown, before the writer is killed


class WriterError(RuntimeError):
    """The writer process could not commit a batch (its traceback is the message)."""


async def read_frame(stream: asyncio.StreamReader) -> bytes:
    """One frame's payload; IncompleteReadError at the end of the stream."""
    (size,) = FRAME.unpack(await stream.readexactly(FRAME.size))
    return await stream.readexactly(size)


@dataclass
class _Child:
    proc: asyncio.subprocess.Process
    ready: asyncio.Future[None]
    replies: deque[asyncio.Future[bytes]] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class WriterProcess:
    def __init__(self, settings: Settings, restart_seconds: float = RESTART_SECONDS) -> None:
        self._settings = settings
        self._restart_seconds = restart_seconds
        self._child: _Child | None = None
        self._spawning = asyncio.Lock()
        self._next_start = 0.0
        self._closing = False
        self.starts = 0  # writers started, the first included
        self.batches = 0  # committed by a writer

    @property
    def pid(self) -> int | None:
        """The running writer's process id."""
        return None if self._child is None else self._child.proc.pid

    async def start(self) -> None:
        """Start the writer; batches handed over before it is ready wait for it."""
        async with self._spawning:
            await self._spawn()

    async def commit(self, journal: str, lines: bytes | bytearray | memoryview) -> None:
        """Have the writer commit ``journal``'s ``lines`` (each ending in a newline).
        HandOffUnavailable when there is no writer to take them (commit them here);
        WriterError when it tried and failed."""
        child = await self._running()
        reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        head = journal.encode() + b"\n"
        stdin = child.proc.stdin
        assert stdin is not None
        # No await between the writes and the append: frames and replies stay in one order.
        child.replies.append(reply)
        stdin.write(FRAME.pack(len(head) + len(lines)))
        stdin.write(head)
        stdin.write(lines)
        try:
            await stdin.drain()
        except (ConnectionError, RuntimeError) as e:
            raise HandOffUnavailable(f"the writer process stopped reading: {e}") from e
        error = await reply
        if error:
            raise WriterError(error.decode(errors="replace"))
        self.batches += 1

    async def close(self) -> None:
        """Let the writer finish what it was handed (the journals close first), then stop it."""
        self._closing = True
        child, self._child = self._child, None
        if child is None:
            return
        assert child.proc.stdin is not None
        child.proc.stdin.close()  # its end of input: it exits after the last batch
        try:
            await asyncio.wait_for(child.proc.wait(), CLOSE_SECONDS)
        except TimeoutError:
            log.error("writer process did not stop; killing it", extra={"pid": child.proc.pid})
            with contextlib.suppress(ProcessLookupError):
                child.proc.kill()
        if child.task is not None:
            await child.task

    async def _running(self) -> _Child:
        async with self._spawning:
            if self._child is None:
                if self._closing or time.monotonic() < self._next_start:
                    raise HandOffUnavailable("no writer process at the moment")
                await self._spawn()
            child = self._child
        if child is None:
            raise HandOffUnavailable("the writer process could not be started")
        try:
            await asyncio.shield(child.ready)
        except HandOffUnavailable:
            raise
        except Exception as e:
            raise HandOffUnavailable(f"the writer process did not start: {e}") from e
        if child is not self._child:  # it died while we waited
            raise HandOffUnavailable("the writer process exited")
        return child

    async def _spawn(self) -> None:
        self._next_start = time.monotonic() + self._restart_seconds
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "modelgrid.writer_main",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        except OSError as e:
            log.error("could not start the writer process", extra={"error": str(e)})
            return
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Nobody may be waiting when it fails to start: the failure is logged, not raised.
        ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        child = _Child(proc, ready)
        assert proc.stdin is not None
        settings = pickle.dumps(self._settings)
        proc.stdin.write(FRAME.pack(len(settings)) + settings)
        child.task = asyncio.create_task(self._read(child), name="writer-replies")
        self._child = child
        self.starts += 1

    async def _read(self, child: _Child) -> None:
        """Match the writer's answers to the batches in the order they were sent, until it
        exits; then fail whatever is still waiting, so it is committed in the server."""
        assert child.proc.stdout is not None
        try:
            await read_frame(child.proc.stdout)
            child.ready.set_result(None)
            log.info("writer process ready", extra={"pid": child.proc.pid})
            while True:
                reply = await read_frame(child.proc.stdout)
                waiting = child.replies.popleft()
                if not waiting.done():  # its caller may have been cancelled
                    waiting.set_result(reply)
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        code = await child.proc.wait()
        gone = HandOffUnavailable(f"the writer process exited with code {code}")
        if not child.ready.done():
            child.ready.set_exception(gone)
        while child.replies:
            waiting = child.replies.popleft()
            if not waiting.done():
                waiting.set_exception(gone)
        if self._child is child:
            self._child = None
            self._next_start = time.monotonic() + self._restart_seconds
        if not self._closing:
            log.error("writer process exited", extra={"pid": child.proc.pid, "code": code})
