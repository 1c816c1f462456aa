"""The audit log's throughput: durable appends, receipts and whole-log verification.

For each database and batch size: append N records (the request path's cost, a journal write
each), flushing every ``batch`` of them as the once-a-second writer would (each flush one
transaction: leaves, completed subtrees and a signed checkpoint), so records per second is how
many a replica can make durable; then receipts (a lookup with its inclusion proof) one after
another; then ``verify`` over the whole log, in leaves per second. PostgreSQL runs in a database
of its own, dropped afterwards, and is skipped when unreachable.

Usage: ``python benchmarks/audit.py [--records 20000] [--batches 100,1000] [--postgres URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# Run as a script, this file's folder is on sys.path but the repository root is not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.databases import fresh_postgres

from modelgrid.audit.keys import AuditKeys
from modelgrid.audit.record import AuditRecord, build_record
from modelgrid.audit.store import AuditLog
from modelgrid.audit.verify import verify_log
from modelgrid.storage.database import Database


@dataclass(frozen=True)
class Figures:
    append_us: float  # per record, on the request path
    durable_per_s: float  # records appended and committed per second
    lookup_ms: float  # a receipt's median latency
    verify_per_s: float  # leaves verified per second


def records(count: int, secret: bytes, tag: str) -> list[AuditRecord]:
    now = datetime.now(UTC)
    return [
        build_record(
            secret,
            content_id=f"chatcmpl-{tag}-{i:08d}",
            time=now,
            org_id=f"org_{i % 50}",
            key_id=f"key_{i % 200}",
            model="smollm2-135m-instruct",
            prompt=f"Prompt number {i}: name three uses of a paperclip." * 4,
            response=f"Answer {i}: hold paper, reset a router, pick a lock." * 8,
            layers=["review", "label"],
            review=[
                {"stage": "input", "action": "allow", "risks": []},
                {"stage": "output", "action": "allow", "risks": []},
            ],
            aigc={"Label": "1", "ContentProducer": "X" * 27, "ProduceID": f"chatcmpl-{i}"},
        )
        for i in range(count)
    ]


async def measure(url: str, workdir: Path, count: int, batch: int) -> Figures:
    db = Database(url)
    await db.migrate()
    keys = AuditKeys.generate()
    log = AuditLog(db, workdir / f"journal-{batch}", keys, flush_interval=3600)
    await log.start()
    made = records(count, keys.hmac_secret, f"{batch}")
    try:
        appending = 0.0
        started = time.perf_counter()
        for start in range(0, count, batch):
            mark = time.perf_counter()
            for record in made[start : start + batch]:
                log.append(record)
            appending += time.perf_counter() - mark
            if not await log.flush():
                raise RuntimeError("a flush failed; see the log")
        durable = count / (time.perf_counter() - started)

        latencies = []
        for record in random.Random(1).sample(made, min(500, count)):
            mark = time.perf_counter()
            receipt = await log.lookup(record.content_id)
            latencies.append(time.perf_counter() - mark)
            assert receipt is not None
        mark = time.perf_counter()
        result = await verify_log(db, log.public_key)
        verifying = time.perf_counter() - mark
        if not result.ok:
            raise RuntimeError(result.summary())
        return Figures(
            append_us=appending / count * 1e6,
            durable_per_s=durable,
            lookup_ms=statistics.median(latencies) * 1e3,
            verify_per_s=result.leaves / verifying,
        )
    finally:
        await log.close()
        await db.close()


async def run(count: int, batches: list[int], postgres: str) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="modelgrid-audit-"))
    print(f"{count} records per run")
    print(
        f"{'database':<12}{'batch':>7}{'append µs':>11}{'durable rec/s':>15}"
        f"{'receipt p50 ms':>16}{'verify leaves/s':>17}"
    )
    for batch in batches:
        sqlite = f"sqlite:///{workdir}/audit-{batch}.db"
        _print("SQLite", batch, await measure(sqlite, workdir, count, batch))
    for batch in batches:
        async with fresh_postgres(postgres, "audit") as url:
            if url is None:
                print(f"PostgreSQL at {postgres} is unreachable: skipped")
                return
            _print("PostgreSQL", batch, await measure(url, workdir, count, batch))


def _print(name: str, batch: int, f: Figures) -> None:
    print(
        f"{name:<12}{batch:>7}{f.append_us:>11.1f}{f.durable_per_s:>15.0f}"
        f"{f.lookup_ms:>16.2f}{f.verify_per_s:>17.0f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batches", default="100,1000")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    asyncio.run(run(args.records, [int(b) for b in args.batches.split(",")], args.postgres))
    return 0


if __name__ == "__main__":
    sys.exit(main())
