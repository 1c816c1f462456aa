"""The safety review's speed with a 10,000-term list: loading, throughput, time per request.

The list is synthetic but shaped like an operator's: 10,000 terms over the 17 risks of
TC260-003's classes A.1 and A.2, half Chinese (2 to 4 characters) and half English (two or
three words). The text is real prose: this repository's README and docs (English, with
some Chinese) and a Chinese passage written for this benchmark, cut into requests of about
1 KB. Reported:

- load: seconds to read and compile the list (what a reload costs, off the event loop);
- throughput: MB/s (UTF-8) of reviewing whole texts (terms, personal information, verdict),
  and of the plain ``normalise`` the matcher used before its C-speed fold, for comparison;
- per request: a 1 KB prompt reviewed whole plus a 1 KB answer, reviewed whole (a request
  that does not stream) and as it streams in pieces of 4 characters (a token's worth), in
  µs, median and p99.

Usage: ``python benchmarks/review.py [--terms 10000] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from modelgrid.review.config import PolicySettings
from modelgrid.review.normalise import normalise
from modelgrid.review.policy import compile_policy
from modelgrid.review.screen import OutputFilter, screen
from modelgrid.review.taxonomy import RISKS
from modelgrid.review.terms import TermMatcher, load_terms

ROOT = Path(__file__).resolve().parent.parent
CHINESE = (
    "今天我们来讨论如何为一家小型网店设计客户服务流程。首先，客服需要在顾客提出问题后尽快回复，"
    "说明订单的发货时间、物流信息以及退换货政策。其次，对于常见问题，可以整理成知识库，方便新员工"
    "查阅。最后，要定期回顾顾客的反馈，找出服务中的不足，并加以改进。数学辅导也是类似的道理："
    "老师先了解学生的基础，再根据薄弱环节安排练习，比如分数的加减法、方程的解法和几何图形的面积。"
)


def term_list(count: int, rng: random.Random) -> str:
    risks = [r.code for r in RISKS if r.code.startswith(("A.1.", "A.2."))]
    words = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(4, 9))) for _ in range(3000)
    ]
    lines = []
    for i in range(count):
        if i % 2:
            term = "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(2, 4)))
        else:
            term = " ".join(rng.sample(words, rng.randint(2, 3)))
        lines.append(f"{term}\t{rng.choice(risks)}")
    return "\n".join(lines) + "\n"


def corpus() -> list[str]:
    """Requests of about 1 KB (UTF-8) of real prose."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    text += (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    text += CHINESE * 40
    pieces, current = [], ""
    for char in text:
        current += char
        if len(current.encode()) >= 1024:
            pieces.append(current)
            current = ""
    return pieces


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terms", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(7)
    path = Path(tempfile.mkdtemp(prefix="modelgrid-review-")) / "terms.txt"
    path.write_text(term_list(args.terms, rng), encoding="utf-8")

    started = time.perf_counter()
    matcher = TermMatcher(load_terms(path))
    load = time.perf_counter() - started
    policy = compile_policy(PolicySettings())
    assert policy.input is not None and policy.output is not None
    texts = corpus()
    size = sum(len(t.encode()) for t in texts)

    def throughput(run: Callable[[str], object]) -> float:
        best = float("inf")
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            for text in texts:
                run(text)
            best = min(best, time.perf_counter() - t0)
        return size / best / 1e6

    inputs = policy.input
    whole = throughput(lambda t: screen(matcher, t, inputs))
    plain = throughput(normalise)

    outputs = policy.output
    whole_requests, streamed_requests = [], []
    # Cut beforehand: the pieces come from the engine, the time measured is the review's.
    pieces = [[t[j : j + 4] for j in range(0, len(t), 4)] for t in texts]
    for i, prompt in enumerate(texts * args.rounds):
        answer = texts[(i + 1) % len(texts)]
        answer_pieces = pieces[(i + 1) % len(texts)]
        t0 = time.perf_counter()
        screen(matcher, prompt, inputs)
        screen(matcher, answer, outputs)
        t1 = time.perf_counter()
        screen(matcher, prompt, inputs)
        review = OutputFilter(matcher, outputs)
        for piece in answer_pieces:
            review.feed(piece)
        review.finish()
        t2 = time.perf_counter()
        whole_requests.append(t1 - t0)
        streamed_requests.append(t2 - t1)

    print(f"terms: {matcher.size:,} ({args.terms:,} in the list); load {load:.2f} s")
    print(f"corpus: {len(texts)} requests, {size / 1e6:.2f} MB")
    print(f"whole-text review: {whole:.1f} MB/s (normalise alone, the old path: {plain:.1f} MB/s)")
    for name, times in (
        ("whole", whole_requests),
        ("streamed in 4-character pieces", streamed_requests),
    ):
        times.sort()
        p99 = times[int(len(times) * 0.99)]
        print(
            f"per request (1 KB prompt whole + 1 KB answer {name}): "
            f"median {statistics.median(times) * 1e6:.0f} µs, p99 {p99 * 1e6:.0f} µs"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
