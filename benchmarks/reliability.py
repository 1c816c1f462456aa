"""How many requests succeed when one of a model's two deployments fails 30% of the time.

The upstream is the nginx mock of ``overhead.py`` plus ``/flaky/v1``, where nginx draws a fault
per request from its random ``$request_id``: HTTP 500 for 15%, and for another 15% it closes the
connection without answering (``return 444``, an abrupt close as the client sees it); the share
is measured by calling ``/flaky/v1`` directly first. ModelGrid serves model ``mock`` from it and
from the healthy ``/v1``, with two retries. Two configurations run: the flaky deployment's
circuit breaker at its default (five failures in a row take it out for 10 s) and effectively
off, which leaves retries alone to carry the load.

Needs ``apt-get install nginx``. Usage: ``python benchmarks/reliability.py [--requests 10000]
[--concurrency 16] [--probe 2000] [--json]``; exits 1 if any configuration stays under 99.9%.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

# Run as a script, this file's folder is on sys.path but the repository root is not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.overhead_targets import (
    ANSWER,
    Processes,
    StartError,
    compact,
    completion_body,
    nginx_string,
    request_body,
    start_mock,
    start_modelgrid,
)

KEY = "sk-bench-0123456789"
TARGET = 0.999
# $request_id is 16 random bytes per request, so every request draws its fault independently.
FAULTS = """\
    split_clients "${request_id}" $fault { 15% status500; 15% drop; * ok; }
"""
INJECTED = nginx_string(compact({"error": {"message": "injected"}}))
FLAKY = f"""\
        location = /flaky/v1/chat/completions {{
            default_type application/json;
            if ($fault = status500) {{ return 500 {INJECTED}; }}
            if ($fault = drop) {{ return 444; }}
            return 200 {nginx_string(completion_body())};
        }}
"""
CONFIGS = {"breaker default": "", "breaker off": "breaker_failures = 1000000\n"}


@dataclass
class Tally:
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


@dataclass
class Run:
    config: str
    requests: int
    succeeded: int
    success_rate: float
    p50_ms: float
    p99_ms: float
    retries: int
    attempts: dict[str, int]
    failures: dict[str, int]
    breaker_final: dict[str, str]
    flaky_breaker_open_share: float  # of admin polls during the run that saw it not closed
    injected_failure_rate_measured: float
    injected_probe_requests: int
    injected: dict[str, int]
    errors: dict[str, int]


def outcome(status: int, raw: bytes) -> str | None:
    """None for the expected answer, otherwise a short description of what came instead."""
    try:
        body = json.loads(raw)
        if status == 200 and body["choices"][0]["message"]["content"].startswith(ANSWER):
            return None
        detail = str(body.get("error", {}).get("message", ""))[:90]
    except (ValueError, LookupError, TypeError, AttributeError):
        detail = raw[:60].decode(errors="replace")
    return f"HTTP {status}: {detail}"


async def hammer(url: str, n: int, concurrency: int, headers: dict[str, str]) -> Tally:
    tally, body, todo = Tally(), request_body("mock"), iter(range(n))
    # Never hit in a healthy run; a hung request shows up as a TimeoutError instead of a hang.
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def worker() -> None:
            for _ in todo:  # shared by all workers, so exactly n requests go out
                started = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        result = outcome(response.status, await response.read())
                except (aiohttp.ClientError, TimeoutError) as exc:
                    result = type(exc).__name__
                tally.latencies.append(time.perf_counter() - started)
                if result is None:
                    tally.ok += 1
                else:
                    tally.errors[result] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tally


async def deployments(session: aiohttp.ClientSession, origin: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with session.get(f"{origin}/admin/v1/deployments", headers=headers) as response:
        response.raise_for_status()
        data = await response.json()
    return [d for m in data["data"] if m["model"] == "mock" for d in m["deployments"]]


async def measure(base: str, args: argparse.Namespace) -> tuple[Tally, list[dict[str, Any]], float]:
    """The load through ModelGrid, its deployments afterwards, and the share of polls during
    the load that found the flaky deployment's breaker not closed."""
    origin = base.removesuffix("/v1")
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    load = asyncio.create_task(
        hammer(f"{base}/chat/completions", args.requests, args.concurrency, headers)
    )
    polls: list[bool] = []
    async with aiohttp.ClientSession() as session:
        while not load.done():
            states = {d["name"]: d["breaker"] for d in await deployments(session, origin)}
            polls.append(states["flaky"] != "closed")
            await asyncio.wait([load], timeout=0.2)
        final = await deployments(session, origin)
    return load.result(), final, sum(polls) / max(1, len(polls))


def model_config(workdir: Path, origin: str, flaky_extra: str) -> Path:
    path = workdir / "modelgrid.toml"
    # A JSON string is a TOML basic string.
    path.write_text(
        f'host = "127.0.0.1"\ndata_dir = {json.dumps(str(workdir / "data"))}\n'
        'log_level = "warning"\n[models.mock]\nbalancing = "least_inflight"\n'
        "max_retries = 2\nretry_backoff_seconds = 0.01\n"
        '[[models.mock.deployments]]\nengine = "openai"\nname = "flaky"\n'
        f"base_url = {json.dumps(origin + '/flaky/v1')}\n{flaky_extra}"
        '[[models.mock.deployments]]\nengine = "openai"\nname = "healthy"\n'
        f"base_url = {json.dumps(origin + '/v1')}\n"
    )
    return path


def run_config(name: str, origin: str, workdir: Path, args: argparse.Namespace) -> Run:
    workdir.mkdir()
    headers = {"Content-Type": "application/json"}
    flaky = f"{origin}/flaky/v1/chat/completions"
    probe = asyncio.run(hammer(flaky, args.probe, args.concurrency, headers))
    procs = Processes()
    try:
        config = model_config(workdir, origin, CONFIGS[name])
        base = start_modelgrid(procs, config, KEY, workdir / "modelgrid.log")
        tally, final, open_share = asyncio.run(measure(base, args))
    finally:
        procs.stop()
    attempts = {d["name"]: d["requests"] for d in final}
    return Run(
        config=name,
        requests=args.requests,
        succeeded=tally.ok,
        success_rate=tally.ok / args.requests,
        p50_ms=tally.percentile_ms(0.5),
        p99_ms=tally.percentile_ms(0.99),
        retries=sum(attempts.values()) - args.requests,
        attempts=attempts,
        failures={d["name"]: d["failures"] for d in final},
        breaker_final={d["name"]: d["breaker"] for d in final},
        flaky_breaker_open_share=round(open_share, 4),
        injected_failure_rate_measured=round(1 - probe.ok / args.probe, 4),
        injected_probe_requests=args.probe,
        injected=dict(probe.errors),
        errors=dict(tally.errors),
    )


def table(runs: list[Run]) -> str:
    lines = []
    for run in runs:
        probes = run.injected_probe_requests
        shares = ", ".join(f"{k}: {v / probes:.1%}" for k, v in run.injected.items())
        lines.append(
            f"{run.config}: {probes} direct requests to /flaky/v1 failed "
            f"{run.injected_failure_rate_measured:.1%} ({shares})"
        )
    head = f"{'config':<16}{'requests':>9}{'ok':>7}{'success':>10}{'p50 ms':>8}{'p99 ms':>8}"
    head += f"{'retries':>8}  {'flaky att/fail':<16}{'healthy att/fail':<18}flaky breaker open"
    lines += ["", head]
    for r in runs:
        flaky = f"{r.attempts['flaky']}/{r.failures['flaky']}"
        healthy = f"{r.attempts['healthy']}/{r.failures['healthy']}"
        lines.append(
            f"{r.config:<16}{r.requests:>9}{r.succeeded:>7}{r.success_rate:>10.3%}"
            f"{r.p50_ms:>8.1f}{r.p99_ms:>8.1f}{r.retries:>8}  {flaky:<16}{healthy:<18}"
            f"{r.flaky_breaker_open_share:.0%} of polls (now {r.breaker_final['flaky']})"
        )
    for r in runs:
        for error, count in sorted(r.errors.items(), key=lambda e: -e[1]):
            lines.append(f"  {r.config} failed {count}x: {error}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--probe", type=int, default=2000, help="direct requests to /flaky/v1")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        sys.exit("reliability.py needs nginx: apt-get install nginx")
    workdir = Path(tempfile.mkdtemp(prefix="modelgrid-reliability-"))
    procs = Processes()
    try:
        origin = start_mock(nginx, workdir, procs, FAULTS, FLAKY)
        runs = [run_config(name, origin, workdir / str(i), args) for i, name in enumerate(CONFIGS)]
    except StartError as exc:
        sys.exit(f"could not start: {exc}")
    finally:
        procs.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    passed = all(r.success_rate >= TARGET for r in runs)
    if args.json:
        configs = {r.config: asdict(r) for r in runs}
        print(json.dumps({"target": TARGET, "passed": passed, "configs": configs}, indent=2))
    else:
        print(table(runs))
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
