"""Two layouts for the provenance index, the same rows in each, on SQLite and PostgreSQL:
today's one B-tree keyed by ``(band_key, ref)``, and sorted runs keyed by ``(run, band_key,
ref)``, where each batch is a run of its own and runs are merged in key order (a
log-structured merge). For each: a second's batch of random rows committed into the full
index, a look-up of 32 band keys, and for the runs what a merge costs a row.

Both tables are first filled with ``--runs`` × ``--rows`` random rows (each run in key order,
as a merge leaves it), the same rows in both. The batch is ``--batch`` rows, 54,400 by
default: a second of responses at 1,700 a second, 32 rows each. The statements are the ones
ModelGrid's index uses: one JSON array a statement on SQLite, a ``bigint`` array a column on
PostgreSQL (storage/database.py).

Usage: ``python benchmarks/provenance_layouts.py [--runs 50] [--rows 1000000] [--only sqlite]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.databases import fresh_postgres

Rows = npt.NDArray[np.int64]
TABLES = {
    "one_tree": "band_key BIGINT, ref BIGINT, PRIMARY KEY (band_key, ref)",
    "runs": "run BIGINT, band_key BIGINT, ref BIGINT, PRIMARY KEY (run, band_key, ref)",
}
CHUNK = 50_000  # rows a statement


class Store:
    """One database's connection; ``insert`` puts rows (their columns as the table's) in."""

    sqlite: bool

    async def execute(self, sql: str, *args: Any) -> None:
        raise NotImplementedError

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        raise NotImplementedError

    async def insert(self, table: str, rows: Rows) -> None:
        raise NotImplementedError

    async def commit(self, table: str, rows: Rows) -> float:
        started = time.perf_counter()
        await self.execute("BEGIN")
        for start in range(0, len(rows), CHUNK):
            await self.insert(table, rows[start : start + CHUNK])
        await self.execute("COMMIT")
        return time.perf_counter() - started

    def param(self, i: int) -> str:
        """The placeholder of the ``i``-th parameter (from 1)."""
        return "?" if self.sqlite else f"${i}"


class SQLite(Store):
    sqlite = True

    def __init__(self) -> None:
        self.db = sqlite3.connect(Path(tempfile.mkdtemp()) / "layouts.db", isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        for name, columns in TABLES.items():
            self.db.execute(f"CREATE TABLE {name} ({columns}) WITHOUT ROWID")

    async def execute(self, sql: str, *args: Any) -> None:
        self.db.execute(sql, args)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return self.db.execute(sql, args).fetchall()

    async def insert(self, table: str, rows: Rows) -> None:
        picks = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(rows.shape[1]))
        text = orjson.dumps(np.ascontiguousarray(rows), option=orjson.OPT_SERIALIZE_NUMPY)
        self.db.execute(
            f"INSERT INTO {table} SELECT {picks} FROM json_each(?) WHERE true "
            "ON CONFLICT DO NOTHING",
            (text.decode(),),
        )


class Postgres(Store):
    sqlite = False

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    @classmethod
    async def open(cls, url: str) -> Postgres:
        store = cls(await asyncpg.connect(url))
        for name, columns in TABLES.items():
            await store.conn.execute(f"CREATE TABLE {name} ({columns})")
        return store

    async def execute(self, sql: str, *args: Any) -> None:
        await self.conn.execute(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return list(await self.conn.fetch(sql, *args))

    async def insert(self, table: str, rows: Rows) -> None:
        arrays = ", ".join(f"${i + 1}::bigint[]" for i in range(rows.shape[1]))
        columns = [rows[:, i].tolist() for i in range(rows.shape[1])]
        await self.conn.execute(
            f"INSERT INTO {table} SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING", *columns
        )


def random_rows(rng: np.random.Generator, n: int, run: int) -> Rows:
    keys = np.sort(rng.integers(-(2**62), 2**62, n))
    return np.column_stack((np.full(n, run), keys, rng.integers(0, 2**62, n)))


def percentiles(times: list[float]) -> str:
    times = sorted(times)
    return f"p50 {times[len(times) // 2] * 1e3:.2f} ms, p95 {times[int(len(times) * 0.95)] * 1e3:.2f} ms"


async def lookups(look: Callable[[list[int]], Awaitable[object]], known: Rows, n: int) -> str:
    """``n`` look-ups of 32 band keys, four of them keys that are stored."""
    rng, times = np.random.default_rng(4), []
    for _ in range(n):
        keys = rng.integers(-(2**62), 2**62, 32).tolist()
        keys[:4] = known[rng.integers(0, len(known), 4)].tolist()
        started = time.perf_counter()
        await look(keys)
        times.append(time.perf_counter() - started)
    return percentiles(times)


async def measure(name: str, store: Store, args: argparse.Namespace) -> None:
    rng = np.random.default_rng(3)
    known = []
    started = time.perf_counter()
    for run in range(args.runs):
        rows = random_rows(rng, args.rows, run)
        known.append(rows[:: max(1, args.rows // 1000), 1])
        await store.commit("runs", rows)
        await store.commit("one_tree", rows[:, 1:])
    if not store.sqlite:
        await store.execute("VACUUM ANALYZE")  # the planner's statistics, the visibility map
    print(f"\n{name}: {args.runs * args.rows:,} rows in each layout ({args.runs} runs of "
          f"{args.rows:,}), filled in {time.perf_counter() - started:.0f} s")  # fmt: skip

    stored, runs = np.concatenate(known), list(range(args.runs))
    if store.sqlite:
        keys = ", ".join("?" * 32)
        one = f"SELECT ref, count(*) FROM one_tree WHERE band_key IN ({keys}) GROUP BY ref"
        many = (
            f"SELECT ref, count(*) FROM runs WHERE run IN ({', '.join('?' * len(runs))}) "
            f"AND band_key IN ({keys}) GROUP BY ref"
        )

        async def look_one(k: list[int]) -> object:
            return await store.fetch(one, *k)

        async def look_runs(k: list[int]) -> object:
            return await store.fetch(many, *runs, *k)
    else:
        one = "SELECT ref, count(*) FROM one_tree WHERE band_key = ANY($1::bigint[]) GROUP BY ref"
        many = (
            "SELECT ref, count(*) FROM runs WHERE run = ANY($1::bigint[]) "
            "AND band_key = ANY($2::bigint[]) GROUP BY ref"
        )

        async def look_one(k: list[int]) -> object:
            return await store.fetch(one, k)

        async def look_runs(k: list[int]) -> object:
            return await store.fetch(many, runs, k)

    print(f"look-up, one B-tree:   {await lookups(look_one, stored, args.lookups)}")
    print(f"look-up, {args.runs} runs:      {await lookups(look_runs, stored, args.lookups)}")

    batches: dict[str, list[float]] = {"one B-tree": [], "a new run": []}
    for i in range(10):
        rows = random_rows(rng, args.batch, args.runs + 1 + i)
        batches["one B-tree"].append(await store.commit("one_tree", rows[:, 1:]))
        batches["a new run"].append(await store.commit("runs", rows))
    for layout, times in batches.items():
        print(f"a second's {args.batch:,} rows into {layout}: median "
              f"{statistics.median(times) * 1e3:.0f} ms")  # fmt: skip

    merged, target = args.merge * args.rows, args.runs + 1000
    started = time.perf_counter()
    await store.execute("BEGIN")
    await store.execute(
        f"INSERT INTO runs SELECT {store.param(1)}, band_key, ref FROM runs "
        f"WHERE run < {store.param(2)} ORDER BY band_key, ref",
        target,
        args.merge,
    )
    await store.execute(f"DELETE FROM runs WHERE run < {store.param(1)}", args.merge)
    await store.execute("COMMIT")
    took = time.perf_counter() - started
    print(f"merging {args.merge} runs ({merged:,} rows) into one: {took:.1f} s, "
          f"{took / merged * 1e6:.2f} µs a row")  # fmt: skip


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows a run")
    parser.add_argument("--batch", type=int, default=54_400, help="rows a second")
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--merge", type=int, default=10, help="runs merged into one")
    parser.add_argument("--postgres", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    if args.only != "postgresql":
        await measure("SQLite", SQLite(), args)
    if args.only != "sqlite":
        async with fresh_postgres(args.postgres, "layouts") as url:
            if url is None:
                print(f"PostgreSQL: not reachable at {args.postgres}, skipped")
            else:
                store = await Postgres.open(url)
                try:
                    await measure("PostgreSQL", store, args)
                finally:
                    await store.conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
