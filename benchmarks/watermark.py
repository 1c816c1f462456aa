"""The green-list watermark on the embedded model: how often it is detected, how often text
without it is taken for watermarked, and what it costs.

Each prompt is answered twice by ``LlamaCppEngine`` at the model's default sampling (temperature
0.8, top-p 0.95), with one seed per prompt: once with the watermark and once without, one after
the other so that both see the same load on the machine. The detector then scores each answer
truncated to its first 50 and 200 tokens (the detector's own tokenisation of the text, as it
would meet it), and chunks of about 200 tokens of the project's README prose, which no model
wrote. Detection is z >= 4. A fresh random key is drawn for every run.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelgrid.engines.llama_cpp import LlamaCppEngine, load_vocabulary
from modelgrid.settings import LlamaCppSettings
from modelgrid.types import GenerationRequest, Sampling, Tenant
from modelgrid.watermark import GreenList, Watermark, WatermarkProcessor, detect

README = Path(__file__).parent.parent / "README.md"
PROMPTS = [
    "Write a story about a fox who learns to fly.",
    "Describe a busy market in a small town.",
    "Explain why the sky is blue to a child.",
    "Tell me about the history of bread.",
    "Write a letter to a friend about your holiday by the sea.",
    "What are the benefits of regular exercise?",
    "Describe your ideal house and its garden.",
    "Give advice to a new student starting university.",
    "Write a poem about the changing seasons.",
    "Explain how a bicycle works.",
    "What should I pack for a week of hiking in the mountains?",
    "Summarise the plot of a detective novel you invent.",
    "Why do cats purr?",
    "Write a product description for a handmade wooden chair.",
    "Explain the difference between weather and climate.",
    "Describe a day in the life of a lighthouse keeper.",
    "How do I make a simple vegetable soup?",
    "Write a short speech for a friend's wedding.",
    "What are some good habits for saving money?",
    "Tell me about the planets of the solar system.",
]


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    tokens: int  # as the engine generated them
    seconds: float


async def answer(engine: LlamaCppEngine, request: GenerationRequest) -> Answer:
    prepared = await engine.prepare(request)
    start = time.perf_counter()
    pieces = [p async for p in engine.generate(prepared, Tenant("bench"))]
    seconds = time.perf_counter() - start
    return Answer("".join(p.text for p in pieces), sum(p.tokens for p in pieces), seconds)


async def generate_all(
    engine: LlamaCppEngine, prompts: list[str], tokens: int
) -> dict[bool, list[Answer]]:
    answers: dict[bool, list[Answer]] = {True: [], False: []}
    for i, prompt in enumerate(prompts):
        sampling = Sampling(tokens, None, None, 0.0, 0.0, seed=1000 + i)
        for mark in (True, False):
            messages = [{"role": "user", "content": prompt}]
            request = GenerationRequest(sampling, messages=messages, watermark=mark)
            answers[mark].append(await answer(engine, request))
        print(f"prompt {i + 1}/{len(prompts)} answered", file=sys.stderr)
    return answers


def readme_chunks(engine: LlamaCppEngine, size: int) -> list[list[int]]:
    """The README's prose (no code blocks, tables or headings) in chunks of ``size`` tokens."""
    text = re.sub(r"```.*?```", "", README.read_text(), flags=re.DOTALL)
    prose = " ".join(
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith(("|", "#", "-", "*"))
    )
    ids = engine.tokenize_for_detection(prose)
    return [ids[i : i + size] for i in range(0, len(ids) - size + 1, size)]


def z_scores(green: GreenList, samples: list[list[int]], limit: int) -> tuple[list[float], float]:
    """The z-scores of the samples cut to ``limit`` tokens, and the mean tokens scored."""
    results = [detect(green, ids[:limit]) for ids in samples]
    zs = [r.z_score for r in results if r.z_score is not None]
    return zs, statistics.mean(r.tokens_scored for r in results)


def rate(zs: list[float]) -> str:
    hits = sum(z >= 4 for z in zs)
    return f"{hits}/{len(zs)} ({hits / len(zs):.0%})" if zs else "-"


def spread(zs: list[float]) -> str:
    if not zs:
        return "-"
    return f"mean {statistics.mean(zs):5.2f}, min {min(zs):5.2f}, max {max(zs):5.2f}"


def per_call(fn: Callable[[], object], repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--prompts", type=int, default=len(PROMPTS), help="how many (max 20)")
    parser.add_argument("--tokens", type=int, default=200, help="tokens per answer")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    args = parser.parse_args()

    watermark = Watermark(secrets.token_bytes(32))
    settings = LlamaCppSettings(n_ctx=1024, n_threads=args.threads)
    engine = LlamaCppEngine("bench", settings, watermark)
    asyncio.run(engine.start())
    try:
        vocab = load_vocabulary()
        green = watermark.green_list(vocab.n_vocab())
        vocab.close()
        started = time.perf_counter()
        answers = asyncio.run(generate_all(engine, PROMPTS[: args.prompts], args.tokens))
        elapsed = time.perf_counter() - started
        ids = {
            mark: [engine.tokenize_for_detection(a.text) for a in answers[mark]] for mark in answers
        }
        human = readme_chunks(engine, 200)
        sample = ids[True][0][:200]
        text = answers[True][0].text
        detect_seconds = per_call(lambda: detect(green, sample), 200)
        text_seconds = per_call(lambda: engine.detect_watermark(text), 200)
    finally:
        asyncio.run(engine.close())

    processor = WatermarkProcessor(green, watermark.delta)
    # llama-cpp-python hands the processor a strided view of its token data, not a plain array.
    layout = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)
    scores = np.zeros(green.vocab_size, dtype=layout)["logit"]
    context = np.arange(300, dtype=np.intc)
    processor_seconds = per_call(lambda: processor(context, scores), 2000)

    speed = {
        m: sum(a.tokens for a in answers[m]) / sum(a.seconds for a in answers[m]) for m in answers
    }
    long = [s for s in ids[True] if len(s) >= 150]
    rows = [
        ("watermarked, first 50 tokens", ids[True], 50),
        ("watermarked, first 200 tokens", ids[True], 200),
        ("  of which answers of 150+ tokens", long, 200),
        ("unwatermarked, first 50 tokens", ids[False], 50),
        ("unwatermarked, first 200 tokens", ids[False], 200),
        ("README prose, 200-token chunks", human, 200),
    ]
    print(
        f"{args.prompts} prompts, up to {args.tokens} tokens, {args.threads} thread(s), "
        f"gamma {watermark.gamma}, delta {watermark.delta}, context {watermark.context_width} "
        f"tokens; {elapsed:.0f} s of generation\n"
    )
    print(f"{'sample':34}  {'z >= 4':>12}  {'scored':>6}  z-scores")
    for label, samples, limit in rows:
        zs, scored = z_scores(green, samples, limit)
        print(f"{label:34}  {rate(zs):>12}  {scored:6.0f}  {spread(zs)}")
    lengths = [len(s) for s in ids[True]]
    print(f"\n(watermarked answers: {min(lengths)} to {max(lengths)} tokens as re-tokenised)")
    print(f"\n{'generation':34}  {'tokens/s':>12}")
    print(f"{'without the watermark':34}  {speed[False]:12.1f}")
    print(f"{'with the watermark':34}  {speed[True]:12.1f}")
    print(f"{'ratio (with / without)':34}  {speed[True] / speed[False]:12.3f}")
    print(f"\n{'cost':34}  {'per call':>12}")
    print(f"{'logits processor, per token':34}  {processor_seconds * 1e6:9.0f} µs")
    print(f"{'detect(), 200 token ids':34}  {detect_seconds * 1e6:9.0f} µs")
    print(f"{'detect_watermark(), 200-token text':34}  {text_seconds * 1e6:9.0f} µs")


if __name__ == "__main__":
    main()
