"""The figures of benchmarks/overhead.py (and paced_streams.py): what a load run and a
time-to-first-byte run measured, their medians over rounds, the ratios the issue's goals are
stated in, and the tables printed."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass
class Load:
    target: str
    concurrency: int
    requests_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    requests: int = 0
    non_2xx: int = 0
    socket_errors: int = 0
    added_p50_ms: float | None = None
    added_p99_ms: float | None = None
    # The target's process CPU over the run, per request: steadier than requests a second on
    # a machine whose speed drifts, and what a request costs the target itself.
    cpu_us: float | None = None
    error: str = ""


@dataclass
class FirstByte:
    target: str
    requests: int
    median_ms: float = 0.0
    p99_ms: float = 0.0
    added_median_ms: float | None = None
    added_p99_ms: float | None = None
    error: str = ""


def median_loads(rounds: list[list[Load]]) -> list[Load]:
    """Per target and concurrency, the median of each figure over the rounds; a round that
    failed makes the figure failed."""
    out: list[Load] = []
    for first in rounds[0]:
        runs = [
            r
            for each in rounds
            for r in each
            if (r.target, r.concurrency) == (first.target, first.concurrency)
        ]
        failed = next((r for r in runs if r.error), None)
        if failed is not None:
            out.append(failed)
            continue
        cpus = [r.cpu_us for r in runs if r.cpu_us is not None]
        out.append(
            Load(
                first.target,
                first.concurrency,
                requests_per_s=statistics.median(r.requests_per_s for r in runs),
                p50_ms=statistics.median(r.p50_ms for r in runs),
                p99_ms=statistics.median(r.p99_ms for r in runs),
                requests=sum(r.requests for r in runs),
                cpu_us=statistics.median(cpus) if cpus else None,
            )
        )
    return out


def median_ratios(rounds: list[dict[str, dict[int, float]]]) -> dict[str, dict[int, float]]:
    """Each ratio's median over the rounds, each round's ratio taken within that round."""
    out: dict[str, dict[int, float]] = {}
    for name in rounds[0]:
        concs = {c for each in rounds for c in each.get(name, {})}
        out[name] = {
            c: statistics.median(each[name][c] for each in rounds if c in each.get(name, {}))
            for c in concs
        }
    return out


def fmt(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def indent(text: str) -> str:
    return text.strip().replace("\n", "\n" + " " * 8)


def print_tables(loads: list[Load], firsts: list[FirstByte], rounds: int = 1) -> None:
    if rounds > 1:
        print(f"medians of {rounds} rounds, each target in turn in every round")
    print(
        f"{'target':<20}{'conc':>5}{'req/s':>9}{'p50 ms':>10}{'p99 ms':>10}{'+p50':>10}{'+p99':>10}"
        f"{'cpu µs/req':>12}"
    )
    for r in loads:
        if r.error and not r.requests:
            print(f"{r.target:<20}{r.concurrency:>5}  failed: {indent(r.error)}")
            continue
        print(
            f"{r.target:<20}{r.concurrency:>5}{r.requests_per_s:>9.0f}{r.p50_ms:>10.3f}"
            f"{r.p99_ms:>10.3f}{fmt(r.added_p50_ms):>10}{fmt(r.added_p99_ms):>10}"
            f"{fmt(r.cpu_us, 0):>12}" + (f"  FAILED: {r.error}" if r.error else "")
        )
    if firsts:
        print(
            f"\nstreamed, concurrency 1: time to first body byte over {firsts[0].requests} requests"
        )
        print(f"{'target':<20}{'median ms':>10}{'p99 ms':>10}{'+median':>10}{'+p99':>10}")
    for f in firsts:
        if f.error:
            print(f"{f.target:<20}  failed: {indent(f.error)}")
            continue
        print(
            f"{f.target:<20}{f.median_ms:>10.3f}{f.p99_ms:>10.3f}"
            f"{fmt(f.added_median_ms):>10}{fmt(f.added_p99_ms):>10}"
        )


def ratios(loads: list[Load]) -> dict[str, dict[int, float]]:
    """ModelGrid's throughput against the bare proxy (the floor Python reaches here) and
    against LiteLLM, per concurrency: the issue's goals are at least 0.7 and at least 20; with
    full metering against metering off; and with the writer process against without it."""
    ok = {(r.target, r.concurrency): r.requests_per_s for r in loads if not r.error}
    out: dict[str, dict[int, float]] = {}
    for name, target, baseline in [
        ("vs_bare_aiohttp", "modelgrid", "bare-aiohttp"),
        ("vs_bare_pyreqwest", "modelgrid", "bare-pyreqwest"),
        ("vs_litellm", "modelgrid", "litellm"),
        ("metered_vs_unmetered", "modelgrid", "modelgrid-unmetered"),
        ("writer_vs_inline", "modelgrid", "modelgrid-inline"),
    ]:
        out[name] = {
            c: ok[(target, c)] / ok[(baseline, c)]
            for (t, c) in ok
            if t == baseline and (target, c) in ok and ok[(baseline, c)]
        }
    return out


def cpu_ratios(loads: list[Load]) -> dict[str, dict[int, float]]:
    """Each baseline's CPU per request over ModelGrid's, per concurrency (how many times less
    a request costs ModelGrid's process): the same comparisons as the throughput ratios,
    less moved by the machine's speed in the minutes of each run, since every target here
    keeps one core busy."""
    cpu = {(r.target, r.concurrency): r.cpu_us for r in loads if not r.error and r.cpu_us}
    out: dict[str, dict[int, float]] = {}
    for baseline in ("bare-aiohttp", "bare-pyreqwest", "litellm"):
        out["vs_" + baseline.replace("-", "_")] = {
            c: theirs / mine
            for (t, c), theirs in cpu.items()
            if t == baseline and (mine := cpu.get(("modelgrid", c)))
        }
    return out


def added(loads: list[Load]) -> None:
    """Each load's latency over calling the mock directly at the same concurrency."""
    direct = {r.concurrency: r for r in loads if r.target == "direct" and not r.error}
    for r in loads:
        if r.concurrency in direct and not r.error:
            r.added_p50_ms = r.p50_ms - direct[r.concurrency].p50_ms
            r.added_p99_ms = r.p99_ms - direct[r.concurrency].p99_ms
