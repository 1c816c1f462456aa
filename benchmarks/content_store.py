"""What storing a response costs the server: process CPU per response of the stored
conversation's row and its provenance index, against the row alone (the baseline), on SQLite
and PostgreSQL.

Each batch is what ContentStore commits after a second under load: ``--batch`` responses of
the benchmark's short answer (the overhead benchmark's mock completion, with the explicit
label), MinHashed together (``rows``) and inserted in one transaction (``insert``). CPU is
the process's (``resource.getrusage``): it counts the driver's thread and numpy, which a
wall clock on a shared machine would blur.

Usage: ``python benchmarks/content_store.py [--batch 2000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from benchmarks.databases import fresh_postgres

from modelgrid.storage.contents import ContentStore, StoredContent
from modelgrid.storage.database import Database

LABEL = "\n\n本内容由人工智能生成"
ANSWER = "Hello! How can I help you today?"


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def batch(n: int, round_: int) -> list[StoredContent]:
    now = datetime.now(UTC)
    messages = [{"role": "user", "content": "Say hello"}]
    return [
        StoredContent(
            f"chatcmpl-{round_}-{i:08d}", now, "org_1", "key_1", "mock", messages, None,
            (ANSWER + LABEL,), {"Label": "1"}, LABEL,
        )
        for i in range(n)
    ]  # fmt: skip


async def measure(url: str, n: int, rounds: int) -> dict[str, float]:
    """µs of CPU per response: ``rows`` (MinHash and row building), ``row`` (inserting the
    stored conversation alone) and ``index`` (inserting it with its index rows)."""
    db = Database(url)
    await db.migrate()
    store = ContentStore(db, Path(tempfile.mkdtemp()) / "journal", flush_interval=3600)
    store._rows(batch(10, -1), [])  # warm: numpy, the token cache
    best = {"rows": float("inf"), "row": float("inf"), "index": float("inf")}
    for r in range(rounds):
        for with_index in (False, True):
            contents = batch(n, 2 * r + with_index)
            t0 = cpu()
            rows, index, _ = store._rows(contents, [])
            t1 = cpu()
            if not with_index:
                index = index[:0]
            async with db.engine.begin() as conn:
                await store._insert_rows(conn, rows, index)
            t2 = cpu()
            best["rows"] = min(best["rows"], (t1 - t0) / n * 1e6)
            key = "index" if with_index else "row"
            best[key] = min(best[key], (t2 - t1) / n * 1e6)
    await db.close()
    return best


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://127.0.0.1:5432/test")
    args = parser.parse_args()
    results = {}
    sqlite = Path(tempfile.mkdtemp()) / "bench.db"
    results["SQLite"] = await measure(f"sqlite:///{sqlite}", args.batch, args.rounds)
    async with fresh_postgres(args.postgres, "contents") as url:
        if url is None:
            print(f"PostgreSQL: not reachable at {args.postgres}, skipped")
        else:
            results["PostgreSQL"] = await measure(url, args.batch, args.rounds)
    print(f"CPU µs per response, batches of {args.batch:,}, best of {args.rounds}")
    print("database     MinHash+rows  row alone  row+index  index/row")
    for name, r in results.items():
        ratio = r["index"] / r["row"]
        print(f"{name:<12} {r['rows']:>12.1f} {r['row']:>10.1f} {r['index']:>10.1f} {ratio:>9.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
