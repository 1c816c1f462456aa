"""What an open stream costs a gateway while a model generates it.

``overhead.py --stream`` measures streams served as fast as the mock can send them: every
event of an answer reaches the gateway in one or two reads, so per-read costs hardly show. A
model sends its answer a token at a time, each event in a read of its own, for seconds; what
matters then is what each open stream costs while it lasts, and so how many one core holds.

Here the mock (nginx, as in overhead.py) sends a streamed answer of ``--tokens`` events at
``--pace`` events a second (nginx's ``limit_rate``, one event's size a write), and wrk keeps
``--streams`` of them open at once through each target. Reported per target and number of
open streams: streams finished a second, their median and p99 length against the mock's
own, the target's CPU (all its processes) as a share of one core, and that CPU per event
(µs, the share over the events a second the open streams carry at the pace).

Usage: ``python benchmarks/paced_streams.py [--targets direct,bare-pyreqwest,modelgrid]
[--streams 64,256] [--tokens 100] [--pace 50] [--duration 20] [--rounds 1]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Run as a script, this file's folder is on sys.path but the repository root is not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.overhead import mock_and_load, require_tools
from benchmarks.overhead_report import Load, added, median_loads
from benchmarks.overhead_targets import (
    LITELLM_VENV,
    TARGETS,
    LiteLLM,
    Processes,
    long_stream,
)


@dataclass
class Share:
    """A load's CPU, read per open stream and per event at the pace."""

    load: Load
    core_percent: float  # the target's CPU over the run, per cent of one core
    per_stream_percent: float
    per_event_us: float


def shares(loads: list[Load], pace: float) -> list[Share]:
    out = []
    for load in loads:
        if load.error:
            continue
        if load.cpu_us is None:  # the mock itself: its figures are the baseline's
            out.append(Share(load, 0.0, 0.0, 0.0))
            continue
        # cpu_us is per finished stream; times the streams finished a second, it is the CPU
        # a second (streams still open at the end included, which a per-stream figure
        # would miss).
        core = load.cpu_us * load.requests_per_s / 1e6
        per_stream = core / load.concurrency
        out.append(Share(load, core * 100, per_stream * 100, per_stream / pace * 1e6))
    return out


def print_table(rows: list[Share], failed: list[Load], args: argparse.Namespace) -> None:
    print(
        f"{args.tokens} events at {args.pace:g} a second ({args.tokens / args.pace:.1f} s), "
        f"{args.duration} s a run, medians of {args.rounds} round(s)"
    )
    print(
        f"{'target':<20}{'open':>6}{'streams/s':>11}{'p50 s':>8}{'p99 s':>8}{'+p50 ms':>9}"
        f"{'core %':>8}{'% a stream':>12}{'µs an event':>13}"
    )
    for s in rows:
        r = s.load
        print(
            f"{r.target:<20}{r.concurrency:>6}{r.requests_per_s:>11.1f}{r.p50_ms / 1e3:>8.2f}"
            f"{r.p99_ms / 1e3:>8.2f}{r.added_p50_ms or 0:>9.0f}{s.core_percent:>8.1f}"
            f"{s.per_stream_percent:>12.3f}{s.per_event_us:>13.1f}"
        )
    for r in failed:
        print(f"{r.target:<20}{r.concurrency:>6}  failed: {r.error}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--targets",
        type=lambda text: text.split(","),
        default=["direct", "bare-pyreqwest", "modelgrid", "litellm"],
    )
    parser.add_argument(
        "--streams",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[64, 256],
        help="streams open at once (wrk's connections)",
    )
    parser.add_argument("--tokens", type=int, default=100, help="events an answer")
    parser.add_argument("--pace", type=float, default=50, help="events a second")
    parser.add_argument("--duration", type=int, default=20, help="seconds a run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of untimed load first")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--litellm-venv", type=Path, default=LITELLM_VENV)
    args = parser.parse_args()
    if unknown := set(args.targets) - set(TARGETS):
        parser.error(f"unknown targets {sorted(unknown)}; known: {', '.join(TARGETS)}")
    # What overhead.py's helpers read from its own arguments.
    args.stream, args.stream_tokens, args.concurrency = True, args.tokens, args.streams
    nginx, wrk = require_tools()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    litellm = TARGETS["litellm"]
    assert isinstance(litellm, LiteLLM)
    litellm.venv = args.litellm_venv
    load_before = os.getloadavg()[0]
    mock = Processes()
    rounds: list[list[Load]] = []
    failed: list[Load] = []
    with tempfile.TemporaryDirectory(prefix="modelgrid-paced-") as tmp:
        try:
            extra = long_stream(Path(tmp), args.tokens, args.pace)
            _, _, failed, rounds = mock_and_load(nginx, wrk, args, Path(tmp), mock, extra)
        finally:
            for target in TARGETS.values():
                target.stop()
            mock.stop()
    loads = median_loads(rounds) if rounds else []
    added(loads)
    errors = failed + [r for r in loads if r.error]
    print_table(shares(loads, args.pace), errors, args)
    print(f"1-minute load average: {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    return 1 if failed or any(r.error for r in loads) else 0


if __name__ == "__main__":
    sys.exit(main())
