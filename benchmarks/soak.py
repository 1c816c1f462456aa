"""Whether ModelGrid's memory grows with the requests it serves (DESIGN.md lists "memory that
grows per request" among the failures of other gateways not to repeat).

One ``modelgrid serve`` with every pipeline step on (as ``overhead.py``'s ModelGrid target:
plans with limits, quotas and credits, the ledger, review, labels, the audit log, stored
conversations, metrics, the access log at ``info``) in front of the nginx mock, under ``wrk``
at one concurrency for several slices in a row. Requests alternate between a plain and a
streamed completion and rotate over ``--keys`` organisations' keys, so per-key state (limits,
quotas, counters) is exercised for many callers, not one. After each slice the server's
resident set (VmRSS, from /proc; its writer process's added) is read. The first quarter of
the slices is the warm-up (caches, pools, the allocator's arenas, SQLite's page caches
filling up to their bound); over the rest, the figure reported is the slope of a
least-squares line through RSS against requests served, in bytes a request, beside the peak.
RSS moves by tens of megabytes from slice to slice with the batches waiting for their flush
and the allocator's arenas, so two end points alone say little; a leak of even 100 bytes a
request would show as a steady slope of that size across every slice. Each slice also reports
its requests a second and what the server's journals hold uncommitted at its end (from
``/metrics``): a backlog that climbs to ``journal_backlog_bytes`` and throughput that falls
with it say the database, not the server, sets the pace.

Usage: ``python benchmarks/soak.py [--slices 8] [--seconds 15] [--concurrency 16]
[--keys 50] [--against 'NAME=VALUE ...'] [--json]``. ``--against MALLOC_ARENA_MAX=2`` soaks
a second server with that variable in its environment, slice for slice in alternation with
the first, so that the slopes come from the same minutes of the same machine; repeat it for
a third server, and so on. ``MODELGRID_DATABASE_URL`` in the benchmark's own environment (or
in ``--against``'s) puts that server, and its keys, on that database, PostgreSQL say, instead
of SQLite in a fresh data directory; the database should be empty. Needs nginx and wrk
(``apt-get install nginx wrk``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

# Run as a script, this file's folder is on sys.path but the repository root is not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.overhead import require_tools
from benchmarks.overhead_targets import (
    METERED_PLAN,
    Processes,
    request_body,
    session_processes,
    start_mock,
    start_modelgrid,
    upstream_model,
)

ADMIN_KEY = "mg-soak-admin-0123456789"


@dataclass
class Slice:
    seconds: int
    requests: int
    failed: int  # refused and errors
    rss_mb: float
    refused: int = 0  # answered, but not with a 2xx
    errors: int = 0  # no answer: connections refused, reset or timed out
    backlog_mb: float = 0.0  # journal lines not yet committed, at the slice's end

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def served(self) -> int:
        return self.requests - self.refused


def config(workdir: Path, origin: str) -> Path:
    path = workdir / "modelgrid.toml"
    path.write_text(
        f'host = "127.0.0.1"\ndata_dir = {json.dumps(str(workdir / "data"))}\n'
        + METERED_PLAN
        # The mock's plain answer is under /v1 and its streamed one under /stream/v1: one
        # model for each.
        + upstream_model("m", origin + "/v1")
        + upstream_model("s", origin + "/stream/v1")
    )
    return path


def create_keys(path: Path, count: int, env: dict[str, str]) -> list[str]:
    """``env``: the server's own variables, so that the keys go to its database."""
    env = os.environ | env | {"MODELGRID_ADMIN_KEY": ADMIN_KEY}
    cmd = [sys.executable, "-m", "modelgrid", "keys", "create", "--config", str(path)]
    return [
        subprocess.run(
            [*cmd, "--org", f"soak-{n}"], capture_output=True, text=True, check=True, env=env
        ).stdout.strip()
        for n in range(count)
    ]


def wrk_script(path: Path, keys: list[str]) -> None:
    """Each request takes the next key and alternates between the two models."""
    bodies = [request_body("m"), request_body("s", stream=True)]
    path.write_text(
        f"local keys = {{{', '.join(json.dumps(k) for k in keys)}}}\n"
        f"local bodies = {{{', '.join(json.dumps(b) for b in bodies)}}}\n"
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        "  local headers = {}\n"
        '  headers["Content-Type"] = "application/json"\n'
        '  headers["Authorization"] = "Bearer " .. keys[n % #keys + 1]\n'
        '  return wrk.format("POST", nil, headers, bodies[n % 2 + 1])\n'
        "end\n"
    )


def rss_mb(session: int) -> float:
    """The resident sets of the server (which leads a session of its own) and of what it
    started (its writer process), summed."""
    total = 0
    for proc, _ in session_processes({session}):
        try:
            status = (proc / "status").read_text()
        except OSError:
            continue  # ended meanwhile
        if found := re.search(r"^VmRSS:\s+(\d+) kB", status, re.M):
            total += int(found[1])
    return total / 1024


def backlog_mb(base: str) -> float:
    """What the server's journals hold uncommitted (``/metrics``), summed: at the bound, the
    database is behind the requests."""
    with urllib.request.urlopen(base.removesuffix("/v1") + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    found = re.findall(r"^modelgrid_journal_backlog_bytes\{[^}]*\} (\S+)$", text, re.M)
    return sum(float(n) for n in found) / (1024 * 1024)


def run_slice(
    wrk: str, url: str, lua: Path, conc: int, seconds: int, pid: int, timeout: int = 10
) -> Slice:
    cmd = [wrk, "-t1", f"-c{conc}", f"-d{seconds}s", "--timeout", f"{timeout}s"]
    cmd += ["-s", str(lua), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    count = re.search(r"^\s*(\d+) requests in", out, re.M)
    if count is None:
        raise SystemExit("could not read wrk's output:\n" + out)
    refused = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors = 0
    if socket := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        errors = sum(int(n) for n in socket.groups())
    backlog = backlog_mb(url.removesuffix("/chat/completions"))
    return Slice(seconds, int(count[1]), refused + errors, rss_mb(pid), refused, errors, backlog)


@dataclass
class Server:
    """One server under soak, and what its slices found."""

    name: str
    base: str
    pid: int
    lua: Path
    started_mb: float
    slices: list[Slice]


def start(
    procs: Processes, name: str, workdir: Path, origin: str, keys: int, env: dict[str, str]
) -> Server:
    workdir.mkdir()
    path = config(workdir, origin)
    base = start_modelgrid(procs, path, ADMIN_KEY, workdir / "modelgrid.log", env)
    pid = procs.children[-1][0].pid
    lua = workdir / "soak.lua"
    wrk_script(lua, create_keys(path, keys, env))
    return Server(name, base, pid, lua, rss_mb(pid), [])


def summary(server: Server, slices: int) -> dict[str, object]:
    warm = max(1, slices // 4)
    served = list(itertools.accumulate(s.requests for s in server.slices))[warm - 1 :]
    rss = [s.rss_mb for s in server.slices[warm - 1 :]]
    slope = statistics.linear_regression(served, rss).slope if len(set(served)) > 1 else 0.0
    return {
        "server": server.name,
        "rss_mb_at_start": round(server.started_mb, 1),
        "slices": [asdict(s) for s in server.slices],
        "warmup_slices": warm,
        "requests_after_warmup": served[-1] - served[0],
        "failed": sum(s.failed for s in server.slices),
        "rss_mb_after_warmup": rss[0],
        "rss_mb_peak_after_warmup": max(rss),
        "rss_mb_last": rss[-1],
        "bytes_per_request": round(slope * 1024 * 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=15, help="seconds per slice")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--keys", type=int, default=50, help="organisations, one key each")
    parser.add_argument(
        "--against",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="also soak a server with these variables in its environment (space-separated "
        "NAME=VALUE pairs); repeat for more servers. Their slices alternate with the first's, "
        "so all see the same minutes",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args()
    if args.slices < 4:
        parser.error("--slices must be at least 4: the first quarter is the warm-up")
    variants = [dict(pair.split("=", 1) for pair in item.split()) for item in args.against]
    nginx, wrk = require_tools()
    # SIGTERM would otherwise end us without the finally block that stops the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix="modelgrid-soak-") as tmp:
        workdir = Path(tmp)
        try:
            (workdir / "mock").mkdir()
            origin = start_mock(nginx, workdir / "mock", procs)
            servers = [start(procs, "default", workdir / "0", origin, args.keys, {})]
            for n, env in enumerate(variants, 1):
                name = " ".join(f"{k}={v}" for k, v in env.items())
                servers.append(start(procs, name, workdir / str(n), origin, args.keys, env))
            for n in range(args.slices):
                for server in servers:
                    url = server.base + "/chat/completions"
                    done = run_slice(
                        wrk, url, server.lua, args.concurrency, args.seconds, server.pid
                    )
                    server.slices.append(done)
                    if not args.json:
                        print(
                            f"slice {n + 1} ({server.name}): {done.requests:,} requests "
                            f"({done.per_second:,.0f}/s, {done.failed} failed), RSS "
                            f"{done.rss_mb:.1f} MB, backlog {done.backlog_mb:.1f} MB",
                            file=sys.stderr,
                        )
        finally:
            procs.stop()
    results = [summary(server, args.slices) for server in servers]
    if args.json:
        common = {"concurrency": args.concurrency, "keys": args.keys}
        print(json.dumps([common | r for r in results] if variants else common | results[0]))
        return 0
    for r in results:
        print(
            f"\n{r['server']}: RSS at start {r['rss_mb_at_start']} MB; after the warm-up "
            f"({r['warmup_slices']} slices) {r['rss_mb_after_warmup']:.1f} MB; peak after it "
            f"{r['rss_mb_peak_after_warmup']:.1f} MB; last {r['rss_mb_last']:.1f} MB"
        )
        print(
            f"slope over {r['requests_after_warmup']:,} requests after the warm-up: "
            f"{r['bytes_per_request']:+} bytes a request; {r['failed']} failed"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
