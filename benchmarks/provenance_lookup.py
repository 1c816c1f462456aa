"""Provenance lookups: latency and recall over N stored outputs, on SQLite and PostgreSQL.

Stores N synthetic outputs through ContentStore (as the server does: journaled, committed in
batches, each committed response indexed), English-like (words drawn from a Zipf vocabulary,
so common phrases are shared as in real text) and one in five Chinese-like (characters drawn
the same way). Then looks up copies of stored outputs (exact; 5%, 10% and 20% of words replaced
with two sentences swapped; 3% and 8% of Chinese characters replaced) and unrelated new texts.
Recall is the share of lookups whose best match is the source; unrelated texts should match
nothing. Candidates are the stored responses the index returned for exact comparison (at most
50), against N in the table. PostgreSQL runs in a database of its own, dropped afterwards, and
is skipped when unreachable.

Usage: ``python benchmarks/provenance_lookup.py [--contents 20000] [--queries 200]
[--postgres URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

# Run as a script, this file's folder is on sys.path but the repository root is not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.databases import fresh_postgres

from modelgrid.provenance.index import candidates_parameters, candidates_query
from modelgrid.provenance.lookup import THRESHOLD, Provenance
from modelgrid.provenance.shingles import shingle_hashes
from modelgrid.storage.contents import ContentStore, StoredContent
from modelgrid.storage.database import Database

LABEL = "本内容由人工智能生成"
# The commonest Chinese characters, roughly by frequency: a Zipf draw over them reads (to a
# shingle counter) like Chinese prose.
HANZI = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家"
    "学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经"
    "头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者"
    "向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气"
    "信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活"
)


class Corpus:
    """Synthetic outputs and the edits a copier makes, all from one seeded generator."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.words = [_word(self.rng) for _ in range(20_000)]
        self.weights = [1 / (rank + 1) ** 1.1 for rank in range(len(self.words))]
        self.hanzi_weights = [1 / (rank + 1) for rank in range(len(HANZI))]

    def english(self) -> str:
        sentences = []
        for _ in range(self.rng.randint(4, 12)):
            drawn = self.rng.choices(self.words, self.weights, k=self.rng.randint(8, 22))
            sentences.append(" ".join(drawn).capitalize() + ".")
        return " ".join(sentences)

    def chinese(self) -> str:
        sentences = []
        for _ in range(self.rng.randint(3, 8)):
            drawn = self.rng.choices(HANZI, self.hanzi_weights, k=self.rng.randint(12, 30))
            sentences.append("".join(drawn) + "。")
        return "".join(sentences)

    def text(self) -> str:
        return self.chinese() if self.rng.random() < 0.2 else self.english()

    def edit_words(self, text: str, share: float) -> str:
        sentences = [s for s in text.split(". ") if s]
        if len(sentences) > 2:
            i, j = self.rng.sample(range(len(sentences)), 2)
            sentences[i], sentences[j] = sentences[j], sentences[i]
        words = ". ".join(sentences).split()
        for i in self.rng.sample(range(len(words)), max(1, round(len(words) * share))):
            words[i] = self.rng.choice(self.words)
        return " ".join(words)

    def edit_characters(self, text: str, share: float) -> str:
        chars = list(text)
        places = [i for i, c in enumerate(chars) if c != "。"]
        for i in self.rng.sample(places, max(1, round(len(places) * share))):
            chars[i] = self.rng.choice(HANZI)
        return "".join(chars)


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))


def stored(number: int, text: str) -> StoredContent:
    content_id = f"chatcmpl-{number:032x}"
    return StoredContent(
        content_id=content_id,
        created_at=datetime.now(UTC),
        org_id=f"org_{number % 20}",
        key_id=None,
        model="bench",
        messages=[{"role": "user", "content": "Write something."}],
        prompt=None,
        choices=(f"{text}\n\n{LABEL}",),
        aigc={"Label": "1", "ContentProducer": "X" * 27, "ProduceID": content_id},
        label=LABEL,
    )


async def measure(url: str, workdir: Path, count: int, queries: int) -> None:
    db = Database(url)
    await db.migrate()
    store = ContentStore(db, workdir / f"journal-{uuid.uuid4().hex[:6]}", flush_interval=3600)
    await store.start()
    corpus = Corpus()
    texts = [corpus.text() for _ in range(count)]
    try:
        started = time.perf_counter()
        for start in range(0, count, 1000):
            for number in range(start, min(count, start + 1000)):
                store.append(stored(number, texts[number]))
            if not await store.flush():
                raise RuntimeError("a flush failed; see the log")
        stored_per_s = count / (time.perf_counter() - started)
        if not db.is_sqlite:
            async with db.engine.begin() as conn:
                await conn.execute(sa.text("ANALYZE"))
        print(f"  stored and indexed {count} outputs: {stored_per_s:,.0f} a second")
        provenance = Provenance(store)
        rng = random.Random(11)
        chinese = [i for i, t in enumerate(texts) if "。" in t]
        english = [i for i, t in enumerate(texts) if "。" not in t]
        cases: list[tuple[str, list[int], Callable[[str], str]]] = [
            ("exact copy", english, lambda t: t),
            ("5% of words, 2 sentences swapped", english, lambda t: corpus.edit_words(t, 0.05)),
            ("10% of words, 2 sentences swapped", english, lambda t: corpus.edit_words(t, 0.10)),
            ("20% of words, 2 sentences swapped", english, lambda t: corpus.edit_words(t, 0.20)),
            ("Chinese, 3% of characters", chinese, lambda t: corpus.edit_characters(t, 0.03)),
            ("Chinese, 8% of characters", chinese, lambda t: corpus.edit_characters(t, 0.08)),
        ]
        print(
            f"  {'query':<36}{'found':>8}{'p50 ms':>9}{'p95 ms':>9}"
            f"{'similarity':>12}{'candidates':>12}"
        )
        for name, pool, edit in cases:
            picks = rng.sample(pool, min(queries, len(pool)))
            await _row(provenance, db, name, [(edit(texts[i]), i) for i in picks])
        unrelated: list[tuple[str, int | None]] = [(corpus.text(), None) for _ in range(queries)]
        await _row(provenance, db, "unrelated (none should match)", unrelated)
    finally:
        await store.close()
        await db.close()


async def _row(
    provenance: Provenance, db: Database, name: str, asked: list[tuple[str, int | None]]
) -> None:
    latencies, similarities, candidates, found = [], [], [], 0
    for text, source in asked:
        mark = time.perf_counter()
        matches = await provenance.lookup(text)
        latencies.append((time.perf_counter() - mark) * 1e3)
        expected = None if source is None else f"chatcmpl-{source:032x}"
        if expected is None:
            found += not matches
        elif matches and matches[0].content_id == expected:
            found += 1
            similarities.append(matches[0].similarity)
        bands = provenance.hasher.bands_of(shingle_hashes(text))
        async with db.engine.connect() as conn:
            query = candidates_query(len(bands), False)
            rows = (await conn.execute(query, candidates_parameters(bands, None, 50))).all()
        candidates.append(len(rows))
    latencies.sort()
    mean_similarity = f"{statistics.mean(similarities):.2f}" if similarities else "-"
    print(
        f"  {name:<36}{found / len(asked):>8.1%}{statistics.median(latencies):>9.2f}"
        f"{latencies[int(0.95 * (len(latencies) - 1))]:>9.2f}{mean_similarity:>12}"
        f"{statistics.mean(candidates):>12.1f}"
    )


async def run(count: int, queries: int, postgres: str) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="modelgrid-provenance-"))
    print(f"{count} stored outputs, {queries} lookups per row, threshold {THRESHOLD}")
    print("SQLite")
    await measure(f"sqlite:///{workdir}/provenance.db", workdir, count, queries)
    async with fresh_postgres(postgres, "provenance") as url:
        if url is None:
            print(f"PostgreSQL at {postgres} is unreachable: skipped")
            return
        print("PostgreSQL")
        await measure(url, workdir, count, queries)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--contents", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    asyncio.run(run(args.contents, args.queries, args.postgres))
    return 0


if __name__ == "__main__":
    sys.exit(main())
