"""What retention costs a stored conversation: ``ContentStore.prune`` against the way it
deleted the provenance index's rows before (one statement a row, the baseline), on SQLite and
PostgreSQL.

Two databases get the same ``--responses`` stored conversations (distinct answers, as
``provenance_growth.py`` makes them); one is pruned by the store, the other by the baseline,
which is the store's loop with the index's rows deleted by SQLAlchemy's executemany, a
thousand responses a transaction as the store goes; the baseline runs first, then the store,
each until its database is empty.

Usage: ``python benchmarks/content_prune.py [--responses 20000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from benchmarks.databases import fresh_postgres_pair
from benchmarks.provenance_growth import batch

from modelgrid.provenance.index import index_rows
from modelgrid.storage.contents import ContentStore
from modelgrid.storage.database import Database
from modelgrid.storage.tables import provenance_index, stored_contents

CHUNK = 1000  # responses a transaction, as the store prunes them


async def stored(url: str, responses: int) -> ContentStore:
    db = Database(url)
    await db.migrate()
    store = ContentStore(db, Path(tempfile.mkdtemp()) / "journal", 3600)
    rng = random.Random(1)
    for number in range(0, responses, CHUNK):
        rows, index, _ = store._rows(batch(min(CHUNK, responses - number), number, rng), [])
        async with db.begin_write() as conn:
            await store._insert_rows(conn, rows, index)
    return store


async def baseline_chunk(store: ContentStore) -> int:
    """A chunk pruned as before: the index's rows deleted one statement a row."""
    c, ix = stored_contents.c, provenance_index.c
    drop = provenance_index.delete().where(
        ix.band_key == sa.bindparam("k"), ix.ref == sa.bindparam("r")
    )
    async with store.db.begin_write() as conn:
        old = (await conn.execute(sa.select(c.content_id, c.choices, c.label).limit(CHUNK))).all()
        if not old:
            return 0
        responses = [(r.content_id, orjson.loads(r.choices), r.label) for r in old]
        rows = await asyncio.to_thread(index_rows, store.hasher, responses)
        if rows:
            await conn.execute(drop, [{"k": key, "r": ref} for key, ref in rows])
        ids = [r.content_id for r in old]
        await conn.execute(stored_contents.delete().where(c.content_id.in_(ids)))
    return len(old)


async def run(name: str, urls: tuple[str, str], responses: int) -> None:
    now, before = await stored(urls[0], responses), await stored(urls[1], responses)
    took = {"before": 0.0, "now": 0.0}
    counted = {"before": 0, "now": 0}
    started = time.perf_counter()
    while done := await baseline_chunk(before):
        counted["before"] += done
    took["before"] = time.perf_counter() - started
    started = time.perf_counter()
    counted["now"] = await now.prune(datetime.now(UTC) + timedelta(days=1))
    took["now"] = time.perf_counter() - started
    per = {k: took[k] / max(counted[k], 1) * 1e6 for k in took}
    print(
        f"{name}: {counted['now']:,} responses pruned, statement a row {per['before']:.0f} µs "
        f"a response, arrays {per['now']:.0f} µs ({per['now'] / per['before']:.2f}×)"
    )
    for store in (now, before):
        await store.db.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=20_000)
    parser.add_argument("--postgres", default="postgresql://127.0.0.1:5432/test")
    args = parser.parse_args()
    where = Path(tempfile.mkdtemp())
    await run(
        "SQLite", (f"sqlite:///{where}/now.db", f"sqlite:///{where}/before.db"), args.responses
    )
    async with fresh_postgres_pair(args.postgres, ("prune_now", "prune_before")) as urls:
        if urls is None:
            print(f"PostgreSQL: not reachable at {args.postgres}, skipped")
        else:
            await run("PostgreSQL", urls, args.responses)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
