"""The latency a gateway adds in front of an OpenAI-compatible upstream.

The upstream is a mock: nginx, answering every chat completion with one fixed body, so that it
costs next to nothing and the difference between calling it directly and through a target is
the target's own cost. nginx's ``return`` cannot look at the request body, so the streamed answer
(a fixed SSE body) lives under a second base URL, ``/stream/v1``; each target is started once
against ``/v1`` for the load runs and once against ``/stream/v1`` for time to first byte.

Load comes from ``wrk -t1 -cC`` at each concurrency; a run with any error or non-2xx answer is
marked failed. Each run also reports the target's own CPU time per request (its processes', from
/proc), and requests per CPU second against the bare proxy's and LiteLLM's: on a machine whose
speed drifts from minute to minute, a steadier comparison than requests a second. The machine has two cores, so nginx runs one worker and wrk one thread, leaving
the target (one Python process) the rest; all three share the cores, so absolute figures are
lower than on a bigger box, but the added latency at concurrency 1 is the cleanest figure.

Needs ``apt-get install nginx wrk``; the bare-aiohttp target needs ``pip install aiohttp`` (the
project's dev extra has it), bare-pyreqwest the client ModelGrid itself uses. The
litellm target needs its own virtualenv, so that litellm's pins never touch the project's::

    python3 -m venv benchmarks/.venv-litellm
    benchmarks/.venv-litellm/bin/pip install 'litellm[proxy]'

made with the same Python as the one that runs this script (which runs the other targets):
the interpreter's build changes a Python gateway's speed by a third (docs/benchmarks.md), so
``--litellm-venv`` names another one, and the report names each target's Python.

Every target is started first; then each round runs them in turn, so that with ``--rounds 3``
each target is measured in three stretches of minutes spread over the run, and each ratio is
taken within a round (then its median over the rounds): a machine whose speed drifts from one
minute to the next then moves the ratios much less than the absolute figures.

With ``--stream`` the load is streamed requests instead, against targets started on
``/stream/v1`` (nine content events, a finish and a usage event, then ``[DONE]``): what a
gateway costs per stream rather than per plain answer. ``--stream-tokens N`` makes the streamed
answer N content events long instead (about 4.6 characters each, served from a file under
``/long/v1``): what a gateway's per-piece work (the safety review judging a stream as it
goes, say) costs on an answer of a real length.

Usage: ``python benchmarks/overhead.py [--targets direct,bare-aiohttp] [--concurrency 1,16,64]
[--duration 10] [--rounds 1] [--ttfb 500] [--stream] [--stream-tokens N] [--json]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

# Run as a script, this file's folder is on sys.path but the repository root is not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.overhead_report import (
    FirstByte,
    Load,
    added,
    cpu_ratios,
    median_loads,
    median_ratios,
    print_tables,
    ratios,
)
from benchmarks.overhead_targets import (
    LITELLM_VENV,
    LONG_STREAM,
    TARGETS,
    LiteLLM,
    Processes,
    StartError,
    Target,
    check,
    long_stream,
    python_of,
    request_body,
    start_mock,
)


def require_tools() -> tuple[str, str]:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    wrk = shutil.which("wrk")
    if nginx is None or wrk is None:
        sys.exit("overhead.py needs nginx and wrk: apt-get install nginx wrk")
    return nginx, wrk


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def run_wrk(
    wrk: str, url: str, target: Target, conc: int, seconds: int, lua: Path, stream: bool = False
) -> Load:
    lua.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(request_body(target.model, stream))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {target.key}"\n'
    )
    # wrk leaves requests slower than its timeout (2 s by default) out of the percentiles; a
    # slow target's p99 would read low, so allow more.
    cmd = [wrk, "-t1", f"-c{conc}", f"-d{seconds}s", "--timeout", "10s", "--latency"]
    cmd += ["-s", str(lua), url]
    done = subprocess.run(cmd, capture_output=True, text=True)
    out, load = done.stdout, Load(target.name, conc)
    if done.returncode:
        load.error = f"wrk exited with {done.returncode}: {done.stderr or out}"
        return load
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    count = re.search(r"^\s*(\d+) requests in", out, re.M)
    pcts = {
        p: float(v) * UNITS[u]
        for p, v, u in re.findall(r"^\s*(\d+)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    }
    if rate is None or count is None or "50" not in pcts or "99" not in pcts:
        load.error = "could not read wrk's output: " + out
        return load
    load.requests_per_s, load.requests = float(rate[1]), int(count[1])
    load.p50_ms, load.p99_ms = pcts["50"], pcts["99"]
    # Despite its label wrk counts only statuses above 399 here; check() has already required
    # a 200 from the target before any run.
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        load.non_2xx = int(m[1])
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        load.socket_errors = sum(int(n) for n in m.groups())
    if load.non_2xx or load.socket_errors:
        load.error = f"{load.non_2xx} non-2xx answers, {load.socket_errors} socket errors"
    return load


def read_body(reader: io.BufferedReader, headers: dict[bytes, bytes]) -> bytes:
    if b"content-length" in headers:
        return reader.read(int(headers[b"content-length"]))
    if headers.get(b"transfer-encoding") != b"chunked":
        raise StartError(f"a streamed answer with neither length nor chunks: {headers}")
    parts: list[bytes] = []
    while size := int(reader.readline().split(b";")[0], 16):
        parts.append(reader.read(size))
        reader.readline()
    while reader.readline() not in (b"\r\n", b""):
        pass
    return b"".join(parts)


def time_to_first_byte(url: str, target: Target, n: int, warmup: int = 20) -> list[float]:
    """Milliseconds from sending a streamed request to the first byte of the answer's body, one
    request at a time on one kept-alive connection. Raw sockets keep the client's own share to
    microseconds; any HTTP client library would add its own overhead to every figure."""
    parts = urlsplit(url)
    body = request_body(target.model, stream=True).encode()
    request = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer {target.key}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    samples: list[float] = []
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")
        for i in range(warmup + n):
            start = time.perf_counter()
            sock.sendall(request)
            status = reader.readline()
            headers: dict[bytes, bytes] = {}
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip().lower()
            if headers.get(b"content-length") != b"0":
                reader.peek(1)  # blocks until the body's first byte is here, unless it already is
            first = time.perf_counter() - start
            content = read_body(reader, headers)
            if not status.startswith(b"HTTP/1.1 200") or not content.endswith(b"[DONE]\n\n"):
                raise StartError(f"streamed request got {status!r}: {content[-300:]!r}")
            if headers.get(b"connection") == b"close":
                raise StartError("the target closes the connection after each streamed answer")
            if i >= warmup:
                samples.append(first * 1e3)
    return samples


# What a target that fails to start or answer raises; the run goes on with the next target.
Failure = (StartError, OSError, httpx.HTTPError, ValueError)


@dataclass
class Running:
    """A target started against the mock's ``/v1``, ready for load."""

    target: Target
    url: str
    lua: Path


def say(name: str, text: str) -> None:
    print(f"[{name}] {text}", file=sys.stderr, flush=True)


def start_for_load(
    names: list[str], origin: str, args: argparse.Namespace, workdir: Path
) -> tuple[dict[str, Running], list[Load]]:
    """Every target started at once, so that rounds can take turns among them; a target that
    fails to start gets failed loads and the others go on."""
    running: dict[str, Running] = {}
    failed: list[Load] = []
    for name in names:
        target = TARGETS[name]
        (where := workdir / name).mkdir(exist_ok=True)
        try:
            say(name, "starting")
            base = target.start(origin + load_path(args), where)
            check(target, base, args.stream)
            running[name] = Running(target, f"{base}/chat/completions", where / "post.lua")
        except Failure as e:
            target.stop()
            failed += [Load(name, c, error=f"{type(e).__name__}: {e}") for c in args.concurrency]
    return running, failed


def mock_and_load(
    nginx: str, wrk: str, args: argparse.Namespace, workdir: Path, mock: Processes, extra: str
) -> tuple[str, dict[str, Running], list[Load], list[list[Load]]]:
    """The mock started (with ``extra`` locations), every target against it, then
    ``args.rounds`` rounds of load: the mock's origin, the targets running (the caller stops
    them, and ``mock``), those that failed to start, and each round's loads."""
    try:
        origin = start_mock(nginx, workdir, mock, locations_extra=extra)
    except StartError as e:
        sys.exit(f"the mock upstream (nginx) did not start: {e}")
    running, failed = start_for_load(args.targets, origin, args, workdir)
    rounds: list[list[Load]] = []
    for n in range(args.rounds):
        print(f"round {n + 1} of {args.rounds}", file=sys.stderr, flush=True)
        rounds.append(load_round(running, wrk, args))
    return origin, running, failed, rounds


def load_path(args: argparse.Namespace) -> str:
    """Where the targets' upstream answers the load's requests."""
    if args.stream_tokens:
        return LONG_STREAM
    return "/stream/v1" if args.stream else "/v1"


def load_round(running: dict[str, Running], wrk: str, args: argparse.Namespace) -> list[Load]:
    """Each running target in turn under each concurrency, its process CPU counted."""
    loads: list[Load] = []
    for name, r in running.items():
        # Fills pools and lets the target's process settle before anything counts.
        run_wrk(wrk, r.url, r.target, max(args.concurrency), args.warmup, r.lua, args.stream)
        for conc in args.concurrency:
            say(name, f"wrk -c{conc} for {args.duration} s")
            before = r.target.procs.cpu_seconds()
            load = run_wrk(wrk, r.url, r.target, conc, args.duration, r.lua, args.stream)
            after = r.target.procs.cpu_seconds()
            if r.target.procs.children and before is not None and after is not None:
                load.cpu_us = (after - before) / max(load.requests, 1) * 1e6
            loads.append(load)
    return loads


def first_byte(target: Target, origin: str, args: argparse.Namespace, workdir: Path) -> FirstByte:
    first = FirstByte(target.name, args.ttfb)
    try:
        say(target.name, f"time to first byte, {args.ttfb} streamed requests")
        base = target.start(f"{origin}/stream/v1", workdir)
        samples = time_to_first_byte(f"{base}/chat/completions", target, args.ttfb)
        first.median_ms = statistics.median(samples)
        first.p99_ms = statistics.quantiles(samples, n=100)[98]
    except Failure as e:
        first.error = f"{type(e).__name__}: {e}"
    finally:
        target.stop()
    return first


def tool_version(cmd: list[str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True)
    return (out.stdout + out.stderr).splitlines()[0].split(" Copyright")[0].strip()


def main() -> int:
    def ints(text: str) -> list[int]:
        return [int(x) for x in text.split(",")]

    def names(text: str) -> list[str]:
        return text.split(",")

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--targets", type=names, default=list(TARGETS), help=",".join(TARGETS))
    parser.add_argument("--concurrency", type=ints, default=[1, 16, 64])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of untimed load first")
    parser.add_argument("--ttfb", type=int, default=500, help="streamed requests; 0 skips")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="load runs of every target in turn; figures and ratios are their medians",
    )
    parser.add_argument(
        "--stream",
        action="store_true",
        help="load with streamed requests (the mock's SSE answer) instead of plain ones",
    )
    parser.add_argument(
        "--stream-tokens",
        type=int,
        default=0,
        help="with --stream: a streamed answer this many pieces long (0: the nine-piece one)",
    )
    parser.add_argument(
        "--litellm-venv",
        type=Path,
        default=LITELLM_VENV,
        help="LiteLLM's virtualenv, made with the Python that runs this (the other targets')",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args()
    if args.stream_tokens and not args.stream:
        parser.error("--stream-tokens needs --stream")
    if unknown := set(args.targets) - set(TARGETS):
        parser.error(f"unknown targets {sorted(unknown)}; known: {', '.join(TARGETS)}")
    nginx, wrk = require_tools()
    # SIGTERM would otherwise end us without the finally blocks that stop the children.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rounds: list[list[Load]] = []
    failed: list[Load] = []
    firsts: list[FirstByte] = []
    litellm = TARGETS["litellm"]
    assert isinstance(litellm, LiteLLM)
    litellm.venv = args.litellm_venv
    versions = {"nginx": tool_version([nginx, "-v"]), "wrk": tool_version([wrk, "-v"])}
    versions["python"] = python_of(sys.executable)
    load_before = os.getloadavg()[0]
    mock = Processes()
    with tempfile.TemporaryDirectory(prefix="modelgrid-overhead-") as tmp:
        try:
            extra = long_stream(Path(tmp), args.stream_tokens) if args.stream_tokens else ""
            origin, running, failed, rounds = mock_and_load(
                nginx, wrk, args, Path(tmp), mock, extra
            )
            for r in running.values():
                versions[r.target.name] = r.target.version()
                r.target.stop()
            if args.ttfb:
                for name in args.targets:
                    (workdir := Path(tmp) / name).mkdir(exist_ok=True)
                    firsts.append(first_byte(TARGETS[name], origin, args, workdir))
        finally:
            for target in TARGETS.values():
                target.stop()
            mock.stop()
    rounds = [each + failed for each in rounds] or [failed]
    for each in rounds:
        added(each)
    loads = median_loads(rounds)
    added(loads)
    base = next((f for f in firsts if f.target == "direct" and not f.error), None)
    for f in firsts:
        if base and not f.error:
            f.added_median_ms, f.added_p99_ms = f.median_ms - base.median_ms, f.p99_ms - base.p99_ms
    # Anything else busy on the two cores shows up here and in the figures alike.
    loadavg = {"before": load_before, "after": os.getloadavg()[0]}
    if args.json:
        config = {"duration_s": args.duration, "concurrency": args.concurrency}
        config |= {"rounds": args.rounds, "stream": args.stream}
        config |= {"stream_tokens": args.stream_tokens}
        config |= {"cpus": os.cpu_count(), "loadavg_1min": loadavg}
        result: dict[str, object] = {"config": config, "versions": versions}
        result |= {"load": [asdict(r) for r in loads], "ttfb": [asdict(f) for f in firsts]}
        result |= {"rounds": [[asdict(r) for r in each] for each in rounds]}
        result |= {"modelgrid_throughput": median_ratios([ratios(each) for each in rounds])}
        result |= {
            "modelgrid_requests_per_cpu_second": median_ratios(
                [cpu_ratios(each) for each in rounds]
            )
        }
        print(json.dumps(result))
    else:
        print_tables(loads, firsts, len(rounds))
        for name, by_concurrency in median_ratios([ratios(each) for each in rounds]).items():
            if by_concurrency:
                cells = ", ".join(f"{v:.2f}x at {c}" for c, v in sorted(by_concurrency.items()))
                print(f"\nmodelgrid throughput {name.replace('_', ' ')}: {cells}")
        for name, by_concurrency in median_ratios([cpu_ratios(each) for each in rounds]).items():
            if by_concurrency:
                cells = ", ".join(f"{v:.2f}x at {c}" for c, v in sorted(by_concurrency.items()))
                print(f"\nmodelgrid requests per CPU second {name.replace('_', ' ')}: {cells}")
        print("\n" + "; ".join(f"{k}: {v}" for k, v in versions.items() if v))
        print(
            f"1-minute load average: {loadavg['before']:.2f} before, {loadavg['after']:.2f} after"
        )
    return 1 if any(r.error for r in loads) or any(f.error for f in firsts) else 0


if __name__ == "__main__":
    sys.exit(main())
