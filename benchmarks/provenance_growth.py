"""What a second's stored conversations cost the writer as the database grows: the commit of
each batch's rows with their provenance index, against the rows alone, on SQLite and
PostgreSQL.

Each batch is a second of traffic at ``--rate`` responses a second, committed as ContentStore
commits it (``_insert_rows`` in one write transaction); the two variants take turns, batch
by batch, each in a database of its own, so both grow through the same minutes. The answers
are distinct (random words), so their band keys spread over the whole index as real traffic's
do. Reported every ``--every`` batches: the median wall time of a commit over that window,
which is the share of the writer's second the stored conversations take at that rate.

``--prefill N`` first puts N random index rows into the indexed variant's database (in key
order, untimed): the index that months of traffic at a lower rate leave behind, so that a
realistic rate can be measured against a large index without waiting for it.

Usage: ``python benchmarks/provenance_growth.py [--rate 1700] [--batches 300] [--every 30]
[--prefill 0]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from benchmarks.databases import fresh_postgres_pair

from modelgrid.provenance.index import INDEX_COLUMNS, INDEX_KEY
from modelgrid.storage.contents import ContentStore, StoredContent
from modelgrid.storage.database import Database
from modelgrid.storage.tables import provenance_index

WORDS = [f"w{i}" for i in range(20_000)]
MESSAGES = [{"role": "user", "content": "Say something"}]


def batch(n: int, number: int, rng: random.Random) -> list[StoredContent]:
    now = datetime.now(UTC)
    return [
        StoredContent(
            f"chatcmpl-{number:06d}-{i:06d}", now, "org_1", "key_1", "mock", MESSAGES, None,
            (" ".join(rng.choices(WORDS, k=40)),), {"Label": "1"},
        )
        for i in range(n)
    ]  # fmt: skip


class Variant:
    def __init__(self, name: str, url: str, indexed: bool) -> None:
        self.name, self.indexed = name, indexed
        self.db = Database(url)
        self.store = ContentStore(self.db, Path(tempfile.mkdtemp()) / "journal", 3600)
        self.window: list[float] = []
        self.index_rows = 0

    async def commit(self, contents: list[StoredContent]) -> None:
        rows, index, _ = self.store._rows(contents, [])
        if not self.indexed:
            index = index[:0]
        self.index_rows += len(index)
        started = time.perf_counter()
        async with self.db.begin_write() as conn:
            await self.store._insert_rows(conn, rows, index)
        self.window.append(time.perf_counter() - started)

    async def prefill(self, rows: int, chunk: int = 1_000_000) -> None:
        """``rows`` random index rows, in key order, a chunk a transaction."""
        rng = np.random.default_rng(2)
        keys = np.sort(rng.integers(-(2**63), 2**63 - 1, rows, dtype=np.int64))
        for start in range(0, rows, chunk):
            part = keys[start : start + chunk]
            array = np.column_stack((part, rng.integers(0, 2**63 - 1, len(part), dtype=np.int64)))
            async with self.db.begin_write() as conn:
                await self.db.insert_array(
                    conn, provenance_index, INDEX_COLUMNS, array, unique=INDEX_KEY
                )
        self.index_rows += rows

    async def size_mb(self) -> float:
        if self.db.is_sqlite:
            path = Path(self.db.engine.url.database or "")
            files = [path, path.with_name(path.name + "-wal")]
            return sum(f.stat().st_size for f in files if f.exists()) / 1e6
        async with self.db.engine.connect() as conn:
            size = await conn.scalar(sa.text("SELECT pg_database_size(current_database())"))
        return float(size or 0) / 1e6


async def run(label: str, urls: tuple[str, str], args: argparse.Namespace) -> None:
    variants = [Variant("rows alone", urls[0], False), Variant("rows + index", urls[1], True)]
    for v in variants:
        await v.db.migrate()
    if args.prefill:
        started = time.perf_counter()
        await variants[1].prefill(args.prefill)
        print(
            f"{label}: {args.prefill:,} index rows put in in {time.perf_counter() - started:.0f} s"
        )
    rng = random.Random(1)
    print(f"\n{label}: {args.rate:,} responses a batch")
    print(
        "batches  responses   index rows  |  rows alone: ms  MB  |  rows + index: ms  MB  | ratio"
    )
    for number in range(1, args.batches + 1):
        contents = batch(args.rate, number, rng)
        for v in variants if number % 2 else variants[::-1]:
            await v.commit(contents)
        if number % args.every == 0:
            plain, indexed = (statistics.median(v.window) * 1e3 for v in variants)
            sizes = [await v.size_mb() for v in variants]
            print(
                f"{number:7d} {number * args.rate:10,d} {variants[1].index_rows:12,d}  |"
                f" {plain:14.1f} {sizes[0]:5.0f}  | {indexed:16.1f} {sizes[1]:5.0f}  |"
                f" {indexed / plain:5.1f}×",
                flush=True,
            )
            for v in variants:
                v.window.clear()
    for v in variants:
        await v.db.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1700, help="responses a batch (a second's)")
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--every", type=int, default=30, help="batches a reported window")
    parser.add_argument("--prefill", type=int, default=0, help="index rows put in first")
    parser.add_argument("--postgres", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    if args.only != "postgresql":
        where = Path(tempfile.mkdtemp())
        await run("SQLite", (f"sqlite:///{where}/rows.db", f"sqlite:///{where}/index.db"), args)
    if args.only != "sqlite":
        async with fresh_postgres_pair(args.postgres, ("rows", "index")) as urls:
            if urls is None:
                print(f"PostgreSQL: not reachable at {args.postgres}, skipped")
            else:
                await run("PostgreSQL", urls, args)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
