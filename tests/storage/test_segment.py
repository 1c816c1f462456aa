"""A journal's segment: lines copied into a mapped file with its room reserved, read back by a
replay up to the zeroed tail, written with os.write where the file cannot be mapped; and the
journal moving to a larger segment when one fills up."""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
from pathlib import Path

import pytest

from modelgrid.storage.segment import LARGEST, SMALLEST, Segment, next_size

from .test_journal import journal
from .test_ledger import journaled

pytestmark = pytest.mark.anyio


def test_a_new_segment_is_locked_reserved_and_mapped(tmp_path: Path) -> None:
    s = Segment.create(tmp_path, "journal-1-0-ab.jsonl", SMALLEST)
    try:
        assert s.mapped and s.path == tmp_path / "journal-1-0-ab.jsonl"
        assert os.listdir(tmp_path) == ["journal-1-0-ab.jsonl"]  # no hidden name left
        assert os.fstat(s.fd).st_size == SMALLEST
        assert os.fstat(s.fd).st_blocks * 512 >= SMALLEST  # reserved, not sparse
        other = os.open(s.path, os.O_RDONLY)
        with pytest.raises(BlockingIOError):  # another process sees a live segment
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(other)
    finally:
        s.remove()
    assert os.listdir(tmp_path) == []


def test_lines_are_in_the_file_as_soon_as_they_are_appended(tmp_path: Path) -> None:
    s = Segment.create(tmp_path, "journal-1-0-ab.jsonl", SMALLEST)
    try:
        assert s.append(b'{"a":1}\n') and s.append(b'{"b":2}\n')
        data = s.path.read_bytes()  # through the file, not the mapping
        assert data.startswith(b'{"a":1}\n{"b":2}\n') and len(data) == SMALLEST
        assert data[16:] == bytes(SMALLEST - 16)  # the rest of the reservation: zeros
        assert (s.lines, s.used) == (2, 16)
    finally:
        s.remove()


def test_a_full_segment_refuses_a_line_and_keeps_what_it_has(tmp_path: Path) -> None:
    s = Segment.create(tmp_path, "journal-1-0-ab.jsonl", mmap.PAGESIZE)
    try:
        line = b"x" * (mmap.PAGESIZE // 2 - 1) + b"\n"
        assert s.append(line) and s.append(line)
        assert s.append(b"y\n") is False
        assert (s.lines, s.used) == (2, mmap.PAGESIZE)
        assert s.path.read_bytes() == line * 2
    finally:
        s.remove()


def test_a_replay_reads_whole_lines_up_to_the_zeroed_tail(tmp_path: Path) -> None:
    s = Segment.create(tmp_path, "journal-1-0-ab.jsonl", SMALLEST)
    s.append(b"one\n")
    s.append(b"two\n")
    s.append(b"thr")  # a line the kill cut short
    s.release()  # the mapping holds the file open (and so its lock) too
    os.close(s.fd)  # what a killed process leaves: the lines, the reservation, no lock
    adopted = Segment.adopt(s.path)
    assert adopted is not None
    found, lines = adopted
    assert lines == [b"one", b"two"]
    found.remove()
    assert os.listdir(tmp_path) == []


def test_a_live_segment_is_not_adopted(tmp_path: Path) -> None:
    s = Segment.create(tmp_path, "journal-1-0-ab.jsonl", SMALLEST)
    try:
        s.append(b"mine\n")
        assert Segment.adopt(s.path) is None
        assert Segment.adopt(tmp_path / "journal-2-0-cd.jsonl") is None  # gone meanwhile
    finally:
        s.remove()


def test_a_segment_left_for_replay_is_as_long_as_its_lines(tmp_path: Path) -> None:
    current = Segment.create(tmp_path, "journal-1-0-ab.jsonl", SMALLEST)
    current.append(b"kept\n")
    current.close()
    assert (tmp_path / "journal-1-0-ab.jsonl").read_bytes() == b"kept\n"
    rotated = Segment.create(tmp_path, "journal-1-1-cd.jsonl", SMALLEST)
    rotated.append(b"also\n")
    rotated.release()  # no more lines, awaiting its commit when the server stops
    rotated.close()
    assert (tmp_path / "journal-1-1-cd.jsonl").read_bytes() == b"also\n"
    adopted = Segment.adopt(tmp_path / "journal-1-1-cd.jsonl")
    assert adopted is not None
    adopted[0].close()  # another process's lines, left as they are
    assert (tmp_path / "journal-1-1-cd.jsonl").read_bytes() == b"also\n"


def test_where_room_cannot_be_reserved_the_segment_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    s = Segment.create(tmp_path, "journal-1-0-ab.jsonl", SMALLEST)
    try:
        assert not s.mapped
        assert s.append(b"a\n") and s.append(b"b" * SMALLEST + b"\n")  # never full
        assert s.path.read_bytes() == b"a\n" + b"b" * SMALLEST + b"\n"
    finally:
        s.remove()


def test_sizes_follow_what_the_last_segment_took_within_bounds() -> None:
    assert next_size(0) == SMALLEST
    assert next_size(SMALLEST) == 2 * SMALLEST
    assert next_size(3 * 1024 * 1024 + 1) % mmap.PAGESIZE == 0
    assert next_size(LARGEST) == LARGEST
    assert next_size(LARGEST + 1) >= LARGEST + 1  # one long line gets room for itself


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("journal-*.jsonl"))


async def test_the_journal_moves_on_to_a_larger_segment_when_one_fills_up(
    tmp_path: Path,
) -> None:
    batches: list[list[str]] = []

    async def commit(batch: list[str]) -> None:
        batches.append(batch)

    items = journal(tmp_path, commit)
    await items.start()
    try:
        lines = [f"{i:06d}" + "x" * 1000 for i in range(1000)]  # 1 MB: three segments
        for line in lines:
            items.append(line)
        files = segment_files(tmp_path)
        assert len(files) == 3
        replayed = [line.decode() for f in files for line in journaled(f).split(b"\n")[:-1]]
        assert sorted(replayed) == lines  # every line journaled, in one segment or another
        assert sorted(f.stat().st_size for f in files) == [
            SMALLEST,
            2 * SMALLEST,
            4 * SMALLEST,
        ]
        assert await items.flush()
        assert batches == [lines]
        assert len(segment_files(tmp_path)) == 1  # the fresh, current one
    finally:
        await items.close()
    assert os.listdir(tmp_path) == []
