"""Routing policies replayed on RouteLLM's recorded results (``../shared/data/routing``):
GSM8K (correct or not) and MT-Bench (GPT-4 judge scores), contaminated prompts dropped,
each policy beside random routing and the oracle, with RouteLLM's metrics.

MT-Bench is turned into RouteLLM's CSV first (a question's quality per model: the mean judge
score of its two turns, routed on its first turn, as RouteLLM's MT-Bench benchmark does),
written to ``benchmarks/results/mt_bench.csv`` so that ``modelgrid routing replay`` can read
it too. Plots go to ``docs/routing-<benchmark>.png``.

Trained routers (``modelgrid.routing.router``) are scored by 5-fold cross-validation: no
prompt is scored by a model that saw it. A cascade's verifier (``answer``) reads the weak
model's recorded answer, so it pays for that answer on every request: its CPT is also given
with that cost added (``--weak-cost``, a small-model answer's price in strong calls).

Usage: ``python benchmarks/routing_replay.py [--data DIR] [--weak-cost 0.01] [--json]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from modelgrid.routing.plot import plot  # noqa: E402
from modelgrid.routing.policies import POLICIES, scores_of  # noqa: E402
from modelgrid.routing.replay import read_table, replay  # noqa: E402
from modelgrid.routing.router import Router, train  # noqa: E402

WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"


def contaminated(path: Path) -> list[str]:
    return [json.loads(line)["eval_prompt"] for line in path.read_text().splitlines() if line]


def mt_bench_csv(data: Path, out: Path) -> Path:
    questions = [json.loads(line) for line in (data / "mt_bench_question.jsonl").open()]
    dropped = {p.strip() for p in contaminated(data / "mt_bench_contaminated_prompts.jsonl")}
    scores: dict[tuple[int, str], list[float]] = defaultdict(list)
    for line in (data / "mt_bench_judgements.jsonl").open():
        row = json.loads(line)
        scores[(row["question_id"], row["model"])].append(float(row["score"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["prompt", WEAK, STRONG])
        for q in questions:
            if {t.strip() for t in q["turns"]} & dropped:
                continue
            mean = {m: sum(scores[(q["question_id"], m)]) / 2 for m in (WEAK, STRONG)}
            writer.writerow([q["turns"][0], mean[WEAK], mean[STRONG]])
    return out


def _decision_us(router: Router, prompts: list[str]) -> float:
    times = []
    for prompt in prompts:
        started = time.perf_counter()
        router.score(prompt)
        times.append((time.perf_counter() - started) * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "routing")
    parser.add_argument("--json", action="store_true")
    # The small model's cost as a share of a strong call's, which a cascade pays on every
    # request: RouteLLM's own figures put Mixtral-8x7B at about 1% of GPT-4's price.
    parser.add_argument("--weak-cost", type=float, default=0.01)
    args = parser.parse_args()
    benchmarks = {
        "gsm8k": read_table(args.data / "gsm8k_responses.csv", WEAK, STRONG).without(
            contaminated(args.data / "gsm8k_contaminated_prompts.jsonl")
        ),
        "mt-bench": read_table(
            mt_bench_csv(args.data, ROOT / "benchmarks" / "results" / "mt_bench.csv"), WEAK, STRONG
        ),
    }
    report: dict[str, dict[str, object]] = {}
    for name, table in benchmarks.items():
        rows: dict[str, object] = {
            "prompts": len(table.prompts),
            "weak": table.weak_quality,
            "strong": table.strong_quality,
        }
        best = None
        for policy in sorted(POLICIES):
            result = replay(scores_of(policy, table.prompts), table)
            rows[policy] = {"apgr": result.apgr, "cpt50": result.cpt50, "cpt80": result.cpt80}
            rows["random_apgr"], rows["oracle_cpt50"] = result.random_apgr, result.oracle_cpt50
            rows["oracle_apgr"] = result.oracle_apgr
            if policy != "random" and (best is None or result.apgr > best[1].apgr):
                best = (policy, result)
        # Trained routers, every prompt scored by a model trained on the other four fifths.
        for inputs in ("prompt", "answer") if table.weak_answers is not None else ("prompt",):
            router, held_out = train(table, inputs)
            if inputs == "prompt":  # what `auto` pays before the first token: one decision
                rows["route_decision_us"] = _decision_us(router, table.prompts[:300])
            result = replay(held_out, table)
            key = f"trained:{inputs}"
            rows[key] = {"apgr": result.apgr, "cpt50": result.cpt50, "cpt80": result.cpt80}
            if inputs == "answer":  # a cascade pays for the small model's answer every time
                rows[key]["cpt50_with_weak_cost"] = result.cpt50 + args.weak_cost  # type: ignore[index]
            if best is None or result.apgr > best[1].apgr:
                best = (f"router ({inputs})", result)
        assert best is not None
        plot(best[1], table, f"{best[0]} on {name}", ROOT / "docs" / f"routing-{name}.png", best[0])
        report[name] = rows
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for name, rows in report.items():
        print(
            f"{name}: {rows['prompts']} prompts, weak {rows['weak']:.4f}, strong {rows['strong']:.4f};"
            f" oracle APGR {rows['oracle_apgr']:.3f}, CPT(50%) {rows['oracle_cpt50']:.1%};"
            f" random (expected) APGR {rows['random_apgr']:.3f};"
            f" a route decision {rows['route_decision_us']:.0f} us (median)"
        )
        for policy in [*sorted(POLICIES), "trained:prompt", "trained:answer"]:
            if policy not in rows:
                continue
            r = rows[policy]
            assert isinstance(r, dict)
            extra = (
                f"  CPT(50%) counting the small model's answers {r['cpt50_with_weak_cost']:.1%}"
                if "cpt50_with_weak_cost" in r
                else ""
            )
            print(
                f"  {policy:<15} APGR {r['apgr']:.3f}  CPT(50%) {r['cpt50']:.1%}"
                f"  CPT(80%) {r['cpt80']:.1%}{extra}"
            )


if __name__ == "__main__":
    main()
