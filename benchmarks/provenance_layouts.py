"""Two layouts for the provenance index in SQLite, the same rows in each: today's one B-tree
keyed by ``(band_key, ref)``, and sorted runs keyed by ``(run, band_key, ref)``, where each
batch is a run of its own and runs are merged in key order (a log-structured merge). For
each: a second's batch of random rows committed into the full index, a look-up of 32 band
keys, and for the runs what a merge costs a row.

Both tables are first filled with ``--runs`` × ``--rows`` random rows (each run in key order,
as a merge leaves it), the same rows in both. The batch is ``--batch`` rows, 54,400 by
default: a second of responses at 1,700 a second, 32 rows each.

Usage: ``python benchmarks/provenance_layouts.py [--runs 50] [--rows 1000000]``.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import orjson

ONE_TREE = """CREATE TABLE one_tree (band_key INTEGER, ref INTEGER,
    PRIMARY KEY (band_key, ref)) WITHOUT ROWID"""
RUNS = """CREATE TABLE runs (run INTEGER, band_key INTEGER, ref INTEGER,
    PRIMARY KEY (run, band_key, ref)) WITHOUT ROWID"""
Rows = npt.NDArray[np.int64]


def insert(table: str, width: int) -> str:
    """The statement ModelGrid's SQLite path uses: the rows as one JSON array."""
    picks = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(width))
    return f"INSERT INTO {table} SELECT {picks} FROM json_each(?) WHERE true ON CONFLICT DO NOTHING"


def as_json(rows: Rows) -> str:
    return orjson.dumps(np.ascontiguousarray(rows), option=orjson.OPT_SERIALIZE_NUMPY).decode()


def commit(db: sqlite3.Connection, sql: str, rows: Rows) -> float:
    started = time.perf_counter()
    db.execute("BEGIN")
    for start in range(0, len(rows), 50_000):
        db.execute(sql, (as_json(rows[start : start + 50_000]),))
    db.execute("COMMIT")
    return time.perf_counter() - started


def random_rows(rng: np.random.Generator, n: int, run: int) -> Rows:
    keys = np.sort(rng.integers(-(2**62), 2**62, n))
    return np.column_stack((np.full(n, run), keys, rng.integers(0, 2**62, n)))


def percentiles(times: list[float]) -> str:
    times = sorted(times)
    return f"p50 {times[len(times) // 2] * 1e3:.2f} ms, p95 {times[int(len(times) * 0.95)] * 1e3:.2f} ms"


def lookups(
    db: sqlite3.Connection, sql: str, params: Callable[[list[int]], list[int]], known: Rows, n: int
) -> list[float]:
    """``n`` look-ups of 32 band keys, four of them keys that are stored."""
    rng, times = np.random.default_rng(4), []
    for _ in range(n):
        keys = rng.integers(-(2**62), 2**62, 32).tolist()
        keys[:4] = known[rng.integers(0, len(known), 4)].tolist()
        started = time.perf_counter()
        db.execute(sql, params(keys)).fetchall()
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows a run")
    parser.add_argument("--batch", type=int, default=54_400, help="rows a second")
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--merge", type=int, default=10, help="runs merged into one")
    args = parser.parse_args()
    db = sqlite3.connect(Path(tempfile.mkdtemp()) / "layouts.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(ONE_TREE)
    db.execute(RUNS)
    rng = np.random.default_rng(3)
    known = []
    started = time.perf_counter()
    for run in range(args.runs):
        rows = random_rows(rng, args.rows, run)
        known.append(rows[:: max(1, args.rows // 1000), 1])
        commit(db, insert("runs", 3), rows)
        commit(db, insert("one_tree", 2), rows[:, 1:])
    total = args.runs * args.rows
    print(f"{total:,} rows in each layout ({args.runs} runs of {args.rows:,}), filled in "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip

    stored = np.concatenate(known)
    keys = ", ".join("?" * 32)
    runs = list(range(args.runs))
    in_runs = ", ".join("?" * len(runs))
    one = f"SELECT ref, count(*) FROM one_tree WHERE band_key IN ({keys}) GROUP BY ref"
    many = (
        f"SELECT ref, count(*) FROM runs WHERE run IN ({in_runs}) AND band_key IN ({keys}) "
        "GROUP BY ref"
    )
    print(f"look-up, one B-tree:   {percentiles(lookups(db, one, list, stored, args.lookups))}")
    found = lookups(db, many, lambda k: runs + k, stored, args.lookups)
    print(f"look-up, {args.runs} runs:      {percentiles(found)}")

    batches: dict[str, list[float]] = {"one B-tree": [], "a new run": []}
    for i in range(10):
        rows = random_rows(rng, args.batch, args.runs + 1 + i)
        batches["one B-tree"].append(commit(db, insert("one_tree", 2), rows[:, 1:]))
        batches["a new run"].append(commit(db, insert("runs", 3), rows))
    for name, times in batches.items():
        print(f"a second's {args.batch:,} rows into {name}: median "
              f"{statistics.median(times) * 1e3:.0f} ms")  # fmt: skip

    merged, target = args.merge * args.rows, args.runs + 1000
    started = time.perf_counter()
    db.execute("BEGIN")
    db.execute(
        "INSERT INTO runs SELECT ?, band_key, ref FROM runs WHERE run < ? ORDER BY band_key, ref",
        (target, args.merge),
    )
    db.execute("DELETE FROM runs WHERE run < ?", (args.merge,))
    db.execute("COMMIT")
    took = time.perf_counter() - started
    print(f"merging {args.merge} runs ({merged:,} rows) into one: {took:.1f} s, "
          f"{took / merged * 1e6:.2f} µs a row")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
