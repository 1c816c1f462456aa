"""``auto`` on live traffic: what a cascade costs in time to first token, and what it saves
against always calling the large model, measured through the server and its margin report.

Two ModelGrid processes on this machine: the front serves the embedded SmolLM2 as the small
model and, as the large one, a second ModelGrid (the same model file behind the
OpenAI-compatible engine, priced ten times higher). The large model is thus no better than the
small one: what this measures is the mechanism's time and accounting, not answer quality
(routing_replay.py measures that, on recorded results).

1. Time to first token, streamed, at concurrency 1, ``--requests`` each, the same GSM8K
   questions: the small model alone; the large model alone; ``route`` (a router reads the
   prompt, no generation first); ``cascade`` kept (the small model's whole answer, then
   streamed); ``cascade`` escalated (the whole small answer, then the large model's stream).
2. Live saving: ``--traffic`` GSM8K questions through a log-probability cascade with its
   threshold set to the median confidence of a calibration run (so about half escalate),
   then the margin report's ``routes`` line: list price against always-large.

Usage: ``python benchmarks/cascade_live.py [--requests 30] [--traffic 60] [--max-tokens 64]
[--json]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import openai

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from benchmarks.overhead_targets import free_port  # noqa: E402

from modelgrid.routing.replay import Table  # noqa: E402
from modelgrid.routing.router import train  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "routing" / "gsm8k_responses.csv"
SMALL = "smollm2-135m-instruct"
ADMIN = "mg-bench-admin-cascade-0123456789"
# The default plan (its watermark on, as served to the public), with limits no run reaches.
PLAN = (
    "[plans.free]\nrequests_per_minute = 1000000\ntokens_per_minute = 1000000000\n"
    "daily_tokens = 1000000000\nmonthly_tokens = 1000000000\nmax_concurrency = 1000\n"
)


def questions(count: int) -> list[str]:
    csv.field_size_limit(sys.maxsize)
    with DATA.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["prompt"] for r in rows[:count]]


@contextmanager
def serve(workdir: Path, config: str, **env: str) -> Iterator[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "modelgrid.toml").write_text(config)
    port = free_port()
    full = os.environ | {
        "MODELGRID_ADMIN_KEY": ADMIN,
        "MODELGRID_DATA_DIR": str(workdir / "data"),
        **env,
    }
    cmd = [sys.executable, "-m", "modelgrid", "serve", "--config", str(workdir / "modelgrid.toml")]
    with (workdir / "log").open("w") as log:
        proc = subprocess.Popen([*cmd, "--port", str(port)], env=full, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError((workdir / "log").read_text()[-2000:])
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def front_config(upstream: str, router: Path, threshold: float) -> str:
    cascade = f'small = "{SMALL}"\nlarge = "big"\npolicy = "cascade"\nsignal = "logprob"\n'
    return (
        PLAN
        + f"""
[models.{SMALL}]
n_ctx = 2048
prices = {{ input = 0.1, output = 0.2 }}

[models.big]
prices = {{ input = 1.0, output = 2.0 }}
[[models.big.deployments]]
engine = "openai"
base_url = "{upstream}/v1"
model = "{SMALL}"
api_key_env = "UPSTREAM_KEY"

[auto.route]
small = "{SMALL}"
large = "big"
router = "{router}"
max_large_share = 0.5

[auto.kept]
{cascade}min_confidence = 0.0

[auto.escalated]
{cascade}min_confidence = 1.0

[auto.live]
{cascade}min_confidence = {threshold}
"""
    )


def write_router(path: Path, prompts: list[str]) -> Path:
    """A prompt router (its quality is beside the point here: only its cost is timed)."""
    rng = np.random.default_rng(0)
    wins = rng.integers(0, 2, len(prompts)).astype(float)
    router, _ = train(Table(prompts, 1 - wins, wins), "prompt", folds=3)
    router.save(path)
    return path


def user_key(server: str) -> str:
    """A key of an organisation on the default plan (the traffic's)."""
    admin = {"Authorization": f"Bearer {ADMIN}"}
    httpx.post(f"{server}/admin/v1/orgs", json={"name": "traffic"}, headers=admin)
    made = httpx.post(
        f"{server}/admin/v1/keys", json={"org": "traffic", "name": "bench"}, headers=admin
    )
    return str(made.json()["key"])


def ttft(client: openai.OpenAI, model: str, prompts: list[str], max_tokens: int) -> list[float]:
    times = []
    for prompt in prompts:
        started = time.perf_counter()
        stream = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=max_tokens,
            temperature=0,
            stream=True,
        )
        first = None
        for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - started
        times.append(first if first is not None else time.perf_counter() - started)
    return times


def confidences(client: openai.OpenAI, prompts: list[str], max_tokens: int) -> list[float]:
    """Each answer's mean token probability, as the cascade's logprob signal reads it."""
    found = []
    for prompt in prompts:
        reply = client.chat.completions.create(
            model=SMALL,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=max_tokens,
            temperature=0,
            logprobs=True,
        )
        lps = [t.logprob for t in (reply.choices[0].logprobs.content or [])]  # type: ignore[union-attr]
        found.append(float(np.exp(np.mean(lps))) if lps else 0.0)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--traffic", type=int, default=60)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    prompts = questions(args.requests + 2 * args.traffic)
    timed, calibration = (
        prompts[: args.requests],
        prompts[args.requests : args.requests + args.traffic],
    )
    traffic = prompts[args.requests + args.traffic :]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with serve(work / "large", PLAN + f"[models.{SMALL}]\nn_ctx = 2048\n") as large:
            # Calibrated with a key on the traffic's plan: its watermark shifts the tokens'
            # probabilities, and the operator's own keys carry none.
            direct = openai.OpenAI(base_url=f"{large}/v1", api_key=user_key(large), max_retries=0)
            threshold = statistics.median(confidences(direct, calibration, args.max_tokens))
            config = front_config(large, write_router(work / "router.json", prompts), threshold)
            with serve(work / "front", config, UPSTREAM_KEY=ADMIN) as front:
                client = openai.OpenAI(base_url=f"{front}/v1", api_key=ADMIN, max_retries=0)
                ttft(client, SMALL, timed[:2], args.max_tokens)  # warm both processes
                ttft(client, "big", timed[:2], args.max_tokens)
                figures = {
                    name: ttft(client, name, timed, args.max_tokens)
                    for name in (SMALL, "big", "route", "kept", "escalated")
                }
                user = openai.OpenAI(base_url=f"{front}/v1", api_key=user_key(front), max_retries=0)
                answered = []
                for prompt in traffic:
                    raw = user.chat.completions.with_raw_response.create(
                        model="live",
                        messages=[{"role": "user", "content": prompt}],
                        max_tokens=args.max_tokens,
                        temperature=0,
                    )
                    answered.append(raw.parse().model)
                time.sleep(1.5)  # the ledger's flush
                report = httpx.get(
                    f"{front}/admin/v1/reports/margin",
                    headers={"Authorization": f"Bearer {ADMIN}"},
                ).json()
    medians = {name: statistics.median(t) * 1000 for name, t in figures.items()}
    live = report["routes"]["live"]
    result = {
        "requests": args.requests,
        "max_tokens": args.max_tokens,
        "ttft_median_ms": medians,
        "ttft_p90_ms": {n: float(np.percentile(t, 90)) * 1000 for n, t in figures.items()},
        "cascade_kept_over_small": medians["kept"] / medians[SMALL],
        "cascade_escalated_over_large": medians["escalated"] / medians["big"],
        "route_over_small": medians["route"] / medians[SMALL],
        "traffic": len(traffic),
        "threshold": threshold,
        "escalated_share": answered.count("big") / len(answered),
        "live_route": live,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"time to first token, median (p90) ms, {args.requests} streamed GSM8K questions:")
    for name in figures:
        print(f"  {name:<24} {medians[name]:9.1f} ({result['ttft_p90_ms'][name]:.1f})")
    print(
        f"cascade kept / small alone {result['cascade_kept_over_small']:.2f}x; "
        f"escalated / large alone {result['cascade_escalated_over_large']:.2f}x; "
        f"route / small alone {result['route_over_small']:.2f}x"
    )
    print(
        f"live: {len(traffic)} questions, threshold {threshold:.3f}, "
        f"{result['escalated_share']:.0%} escalated; at list prices {live['list_price']:.6f} "
        f"against {live['always_large']:.6f} always large: saving {live['saving_share']:.1%}"
    )


if __name__ == "__main__":
    main()
