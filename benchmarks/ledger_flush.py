"""What the ledger's batched commit costs per entry, by batch size (SQLite, in-process).

A commit has a fixed cost (a transaction through aiosqlite's thread) and a cost per entry
(SQLAlchemy's parameter processing); the flush interval decides how many entries share the
fixed one. Prints wall and CPU time per entry for each batch size.

Usage: ``python benchmarks/ledger_flush.py [--sizes 50,200,1000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

# Run as a script, this file's folder is on sys.path but the repository root is not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from modelgrid.storage.database import Database
from modelgrid.storage.ledger import Ledger, LedgerEntry


async def run(sizes: list[int], rounds: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="modelgrid-flush-"))
    db = Database(f"sqlite:///{workdir}/ledger.db")
    await db.migrate()
    ledger = Ledger(db, workdir / "journal", flush_interval=3600)  # flushed here, by hand
    await ledger.start()
    now = datetime.now(UTC)
    print(f"{'entries per commit':>18}  {'wall µs/entry':>13}  {'CPU µs/entry':>12}")
    try:
        for size in sizes:
            wall = cpu = 0.0
            for r in range(rounds):
                for i in range(size):
                    ledger.append(
                        LedgerEntry(
                            f"req_{size}_{r}_{i}",
                            "org:a",
                            "a",
                            "k",
                            "m",
                            "d",
                            "free",
                            40,
                            0,
                            120,
                            50,
                            50,
                            1,
                            "ok",
                            200,
                            now,
                            now,
                        )
                    )
                started, cpu_started = time.perf_counter(), time.process_time()
                await ledger.flush()
                wall += time.perf_counter() - started
                cpu += time.process_time() - cpu_started
            n = size * rounds
            print(f"{size:>18}  {wall / n * 1e6:>13.1f}  {cpu / n * 1e6:>12.1f}")
    finally:
        await ledger.close()
        await db.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default="50,200,1000")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run([int(x) for x in args.sizes.split(",")], args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
