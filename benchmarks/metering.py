"""Time per request spent in admission and settlement, with their real stores.

Each backend runs the same request shape through ModelGrid's own admission (rate limit,
concurrency slot, tokens per minute) and metering (reservation against a daily and a monthly
token quota and the credits; settlement, which adjusts the counters and journals the ledger
entry), with the ledger's batched writer committing to the database in the background as it
does in a server. Nothing is faked: SQLite with in-process counters, and PostgreSQL with Redis.

For each backend: sequential requests (latency of each phase), then 64 at once (requests/s
through admission and settlement), then the same 64 at once with metering off (admission
only), so the last column is the share of throughput metering keeps.

Usage: ``python benchmarks/metering.py [--requests 3000] [--postgres URL] [--redis URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's folder is on sys.path but the repository root is not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from modelgrid.admission import Admission
from modelgrid.counters import Counters, MemoryCounters, RedisCounters
from modelgrid.limiter import Limiter, MemoryLimiter, RedisLimiter
from modelgrid.metering import Meter
from modelgrid.pricing import Price, micro
from modelgrid.settings import PlanSettings
from modelgrid.storage.database import Database
from modelgrid.storage.keys import KeyRecord
from modelgrid.storage.ledger import Ledger
from modelgrid.trace import Trace
from modelgrid.types import GenerationRequest, Prepared, Sampling

PLAN = PlanSettings(
    requests_per_minute=10**9,
    max_concurrency=10**6,
    tokens_per_minute=10**12,
    daily_tokens=10**12,
    monthly_tokens=10**12,
    billed=True,
)
PRICE = Price(input=micro(0.27), cached_input=micro(0.07), output=micro(1.10))
PREPARED = [Prepared(GenerationRequest(Sampling(256, None, None, 0.0, 0.0)), 40, 256)]


class _Entry:
    id = "m"


async def one(admission: Admission, meter: Meter, caller: KeyRecord, n: int) -> tuple[float, float]:
    """One request's admission and settlement; returns the seconds each took."""
    trace = Trace(f"req_bench_{n}_{time.monotonic_ns()}", "POST", "/v1/chat/completions")
    started = time.perf_counter()
    await admission.admit(caller, _Entry(), trace)  # type: ignore[arg-type]
    trace.tokens_in = 40
    await admission.admit_tokens(caller, PREPARED, trace)
    who = admission.payer(caller, "m", PRICE)
    await meter.reserve(who, 40, 256, trace)
    admitted = time.perf_counter()
    trace.tokens_out, trace.first_token_at, trace.status = 120, admitted, 200
    await trace.settle()
    for release in trace.releases:
        await release()
    return admitted - started, time.perf_counter() - admitted


async def run_backend(name: str, url: str, redis_url: str, requests: int) -> dict[str, float]:
    db = Database(url)
    await db.migrate()
    workdir = Path(tempfile.mkdtemp(prefix="modelgrid-metering-"))
    ledger = Ledger(db, workdir / "journal")
    await ledger.start()
    limiter: Limiter = (
        RedisLimiter(redis_url, prefix=f"bench:{time.time_ns()}:rl:")
        if redis_url
        else MemoryLimiter()
    )
    counters: Counters = (
        RedisCounters(redis_url, prefix=f"bench:{time.time_ns()}:q:")
        if redis_url
        else MemoryCounters()
    )
    await counters.start()
    admission = Admission(limiter, {"bench": PLAN}, "bench")
    caller = KeyRecord("k", "mg-bench", "", "user", None, None, "org1", "bench", "bench")  # type: ignore[arg-type]
    await ledger.grant("org:org1", micro(10**9), "topup")
    meter = Meter(counters, ledger, {"m": PRICE})
    try:
        await one(admission, meter, caller, -1)  # loads the counters once
        phases = [await one(admission, meter, caller, n) for n in range(requests)]
        admit = [a * 1e6 for a, _ in phases]
        settle = [s * 1e6 for _, s in phases]

        async def burst(m: Meter) -> float:
            started = time.perf_counter()
            sem = asyncio.Semaphore(64)

            async def limited(n: int) -> None:
                async with sem:
                    await one(admission, m, caller, n)

            await asyncio.gather(*(limited(n) for n in range(requests)))
            await ledger.flush()  # the batches the burst wrote count against it
            return requests / (time.perf_counter() - started)

        metered = await burst(meter)
        unmetered = await burst(Meter(counters, ledger, {"m": PRICE}, enabled=False))
        await ledger.flush()
        return {
            "admit_median_us": statistics.median(admit),
            "admit_p99_us": statistics.quantiles(admit, n=100)[98],
            "settle_median_us": statistics.median(settle),
            "settle_p99_us": statistics.quantiles(settle, n=100)[98],
            "metered_rps": metered,
            "unmetered_rps": unmetered,
        }
    finally:
        await ledger.close()
        await counters.close()
        await limiter.close()
        await db.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    sqlite = f"sqlite:///{tempfile.mkdtemp(prefix='modelgrid-metering-')}/bench.db"
    backends = [
        ("SQLite, in-process counters", sqlite, ""),
        ("PostgreSQL + Redis", args.postgres, args.redis),
    ]
    print(f"{args.requests} requests per run; times in microseconds")
    print(
        f"{'backend':<30}{'admit p50':>10}{'admit p99':>10}{'settle p50':>11}{'settle p99':>11}"
        f"{'req/s metered':>15}{'req/s off':>11}{'ratio':>7}"
    )
    for name, url, redis_url in backends:
        r = asyncio.run(run_backend(name, url, redis_url, args.requests))
        print(
            f"{name:<30}{r['admit_median_us']:>10.0f}{r['admit_p99_us']:>10.0f}"
            f"{r['settle_median_us']:>11.0f}{r['settle_p99_us']:>11.0f}"
            f"{r['metered_rps']:>15.0f}{r['unmetered_rps']:>11.0f}"
            f"{r['metered_rps'] / r['unmetered_rps']:>7.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
