"""A journal's segment: the file one process's journal lines go to, mapped into its memory.

A line is copied into a shared mapping of the file rather than written with ``os.write``. The
copy lands in the kernel's page cache as it is made, so a process killed once ``append`` has
returned leaves the line behind exactly as a write would (the failure the journal guards
against; journal.py), and the request path makes no system call for it. Two such calls a
request (the ledger's line and the stored conversation's) cost the server about 7% of its CPU
at concurrency 16 (docs/benchmarks.md).

The room is reserved on disk before the file is mapped (``posix_fallocate``): a page of a
mapping that meets a full disk is reported as SIGBUS, which would kill the process. Where the
reservation or the mapping fails (a full disk, a file system without them), the segment is
written with ``os.write`` instead. The unused tail of a mapped segment is zeros, so readers
stop at the first zero byte: the journals' lines are JSON, which never holds one.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
from pathlib import Path

# A new segment's size follows what the last one took (twice it), within these bounds; one
# that fills up is followed by one twice its size. A line longer than the largest gets a
# segment of its own size.
SMALLEST = 256 * 1024
LARGEST = 64 * 1024 * 1024


def next_size(used: int) -> int:
    """A segment's size after one that took ``used`` bytes, in whole pages."""
    wanted = min(max(2 * used, SMALLEST), max(LARGEST, used))
    return -(-wanted // mmap.PAGESIZE) * mmap.PAGESIZE


class Segment:
    """One file of journal lines, held under an exclusive ``flock`` while its process lives,
    so that another process's replay never takes it for a dead one's."""

    def __init__(self, path: Path, fd: int, mapping: mmap.mmap | None = None) -> None:
        self.path = path
        self.fd = fd
        self.lines = 0  # appended to this segment
        self.used = 0  # bytes
        self._map = mapping
        self._reserved = mapping is not None  # room past ``used`` that close() gives back

    @property
    def mapped(self) -> bool:
        return self._map is not None

    @classmethod
    def create(cls, directory: Path, name: str, size: int) -> Segment:
        # Created under a name a replay does not look at, and locked before it gets its real
        # one: another process must never see it unlocked and take it for an orphan.
        hidden = directory / f".{name}"
        fd = os.open(hidden, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(hidden, directory / name)
        except BaseException:
            os.close(fd)
            hidden.unlink(missing_ok=True)
            raise
        mapping = None
        try:
            os.posix_fallocate(fd, 0, size)
            mapping = mmap.mmap(fd, size)  # shared: the copies are the file's pages
        except (OSError, ValueError):
            # Written with os.write from its start instead (a replay stops at any zeros a
            # partial reservation left, should this fail too).
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
        return cls(directory / name, fd, mapping)

    @classmethod
    def adopt(cls, path: Path) -> tuple[Segment, list[bytes]] | None:
        """A dead process's segment, locked now by this one, and its whole lines (a last one
        cut short by the kill is left out); None when it is a live process's, or gone."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None  # committed and deleted by its owner meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None  # a live process's
        if os.fstat(fd).st_nlink == 0:
            os.close(fd)  # its owner deleted it between our open and our lock
            return None
        with open(fd, "rb", closefd=False) as file:
            data = file.read()
        end = data.find(b"\0")  # a mapped segment's unused tail
        lines = (data if end < 0 else data[:end]).split(b"\n")
        return cls(path, fd), lines[:-1]  # the last piece: empty, or a line cut short

    @property
    def size(self) -> int:
        return self.used if self._map is None else len(self._map)

    def append(self, line: bytes) -> bool:
        """Add ``line`` (ending in a newline); False, with nothing written, when a mapped
        segment has no room left for it. Raises OSError where a write fails (a full disk)."""
        if self._map is None:
            os.write(self.fd, line)
        else:
            end = self.used + len(line)
            if end > len(self._map):
                return False
            self._map[self.used : end] = line
        self.used += len(line)
        self.lines += 1
        return True

    def release(self) -> None:
        """No more lines come: the mapping goes (the file and its lock stay)."""
        if self._map is not None:
            self._map.close()
            self._map = None

    def remove(self) -> None:
        """Everything in it is committed: delete it."""
        self.release()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # before close: the lock must outlive the file
        os.close(self.fd)

    def close(self) -> None:
        """Leave it for the next start to replay, as long as its lines: the unused tail of
        its reservation goes back."""
        self.release()
        if self._reserved:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, self.used)
        os.close(self.fd)
