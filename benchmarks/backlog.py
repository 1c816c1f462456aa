"""What a server holds while its database takes nothing: the journals' bounded backlog
(``journal_backlog_bytes``, 64 MiB by default) against no bound, under the same load.

Two ``modelgrid serve`` as ``soak.py`` runs them (every pipeline step on, in front of the nginx
mock, ``wrk`` rotating over many organisations' keys, plain and streamed completions), one with
the default bound and one with ``journal_backlog_bytes = 0``, their slices in alternation so
that both see the same minutes. Each first serves ``--warmup`` slices with its database up;
then the ledger's, the audit log's and the stored conversations' tables are renamed away in its
SQLite file, so that every batch fails to commit as it would against a database that is down,
for ``--outage`` slices; then they are put back for ``--after`` slices. After each slice: the
server's resident set with its writer process's, the bytes its journals hold uncommitted
(``modelgrid_journal_backlog_bytes``), requests answered and refused.

Reported for each: RSS and backlog at the outage's start and at its end, the growth over it
(the figure the bound is for), the requests served and refused during it, and the backlog
after the database came back (it should drain to nothing, and requests go through again).

Usage: ``python benchmarks/backlog.py [--seconds 20] [--warmup 1] [--outage 6] [--after 2]
[--concurrency 16] [--json]``. Needs nginx and wrk (``apt-get install nginx wrk``).
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Run as a script, this file's folder is on sys.path but the repository root is not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.overhead import require_tools
from benchmarks.overhead_targets import Processes, start_mock
from benchmarks.soak import Server, Slice, run_slice, start

TABLES = ("ledger", "audit_leaves", "stored_contents")  # what the three journals commit to


@dataclass
class Phase:
    name: str  # up, down, back
    slice: Slice

    @property
    def backlog_mb(self) -> float:
        return self.slice.backlog_mb


@dataclass
class Run:
    server: Server
    database: Path
    phases: list[Phase] = field(default_factory=list)


def rename(database: Path, away: bool) -> None:
    with sqlite3.connect(database, timeout=30) as db:
        for table in TABLES:
            old, new = (table, f"{table}_away") if away else (f"{table}_away", table)
            db.execute(f"ALTER TABLE {old} RENAME TO {new}")


def summary(run: Run) -> dict[str, object]:
    up = [p for p in run.phases if p.name == "up"]
    down = [p for p in run.phases if p.name == "down"]
    back = [p for p in run.phases if p.name == "back"]
    start_rss, start_backlog = up[-1].slice.rss_mb, up[-1].backlog_mb
    return {
        "server": run.server.name,
        "phases": [asdict(p) for p in run.phases],
        "rss_mb_before_outage": start_rss,
        "rss_mb_end_of_outage": down[-1].slice.rss_mb,
        "rss_mb_growth_in_outage": round(down[-1].slice.rss_mb - start_rss, 1),
        "backlog_mb_before_outage": round(start_backlog, 1),
        "backlog_mb_end_of_outage": round(down[-1].backlog_mb, 1),
        "rss_mb_peak_in_outage": max(p.slice.rss_mb for p in down),
        "served_in_outage": sum(p.slice.served for p in down),
        "refused_in_outage": sum(p.slice.refused for p in down),
        "errors_in_outage": sum(p.slice.errors for p in down),
        "backlog_mb_after": round(back[-1].backlog_mb, 1),
        "served_after": sum(p.slice.served for p in back),
        "failed_after": sum(p.slice.failed for p in back),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="seconds per slice")
    parser.add_argument("--warmup", type=int, default=1, help="slices before the outage")
    parser.add_argument("--outage", type=int, default=6, help="slices with the database down")
    parser.add_argument("--after", type=int, default=2, help="slices once it is back")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--keys", type=int, default=50, help="organisations, one key each")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args()
    nginx, wrk = require_tools()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    procs = Processes()
    plan = ["up"] * args.warmup + ["down"] * args.outage + ["back"] * args.after
    with tempfile.TemporaryDirectory(prefix="modelgrid-backlog-") as tmp:
        workdir = Path(tmp)
        try:
            (workdir / "mock").mkdir()
            origin = start_mock(nginx, workdir / "mock", procs)
            variants = {
                "bounded (default)": {},
                "unbounded": {"MODELGRID_JOURNAL_BACKLOG_BYTES": "0"},
            }
            runs = []
            for n, (name, env) in enumerate(variants.items()):
                server = start(procs, name, workdir / str(n), origin, args.keys, env)
                runs.append(Run(server, workdir / str(n) / "data" / "modelgrid.db"))
            for n, phase in enumerate(plan):
                for run in runs:
                    if phase != (plan[n - 1] if n else "up"):
                        rename(run.database, away=phase == "down")
                    server = run.server
                    url = server.base + "/chat/completions"
                    # Past the server's own wait (10 s), so that its 503 comes first.
                    done = run_slice(
                        wrk, url, server.lua, args.concurrency, args.seconds, server.pid, 30
                    )
                    run.phases.append(Phase(phase, done))
                    if not args.json:
                        print(
                            f"slice {n + 1}, database {phase} ({server.name}): "
                            f"{done.served:,} served, {done.refused:,} refused, "
                            f"{done.errors:,} errors; "
                            f"RSS {done.rss_mb:.1f} MB, backlog {run.phases[-1].backlog_mb:.1f} MB",
                            file=sys.stderr,
                        )
        finally:
            procs.stop()
    results = [summary(run) for run in runs]
    if args.json:
        print(
            json.dumps({"concurrency": args.concurrency, "seconds": args.seconds, "runs": results})
        )
        return 0
    for r in results:
        print(
            f"\n{r['server']}: over the outage RSS {r['rss_mb_before_outage']:.1f} → "
            f"{r['rss_mb_end_of_outage']:.1f} MB ({r['rss_mb_growth_in_outage']:+.1f}; peak "
            f"{r['rss_mb_peak_in_outage']:.1f}), backlog "
            f"{r['backlog_mb_before_outage']} → {r['backlog_mb_end_of_outage']} MB; "
            f"{r['served_in_outage']:,} served, {r['refused_in_outage']:,} refused, "
            f"{r['errors_in_outage']:,} errors. "
            f"Database back: backlog {r['backlog_mb_after']} MB, {r['served_after']:,} served, "
            f"{r['failed_after']:,} failed"
        )
    bounded, unbounded = results
    peaks = (bounded["rss_mb_peak_in_outage"], unbounded["rss_mb_peak_in_outage"])
    if isinstance(peaks[0], float) and isinstance(peaks[1], float):
        print(f"peak RSS in the outage, bounded ÷ unbounded: {peaks[0] / peaks[1]:.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
