"""Knowledge in the database, SQLite and PostgreSQL: ingestion, re-indexing, BM25 retrieval,
and organisations kept apart inside the queries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelgrid.knowledge.bm25 import scores
from modelgrid.knowledge.ingest import files_of, ingest
from modelgrid.knowledge.retrieval import Knowledge, sources_block, with_sources
from modelgrid.knowledge.store import EVERYONE, KnowledgeStore, Posting
from modelgrid.storage.database import Database
from modelgrid.types import GenerationRequest, Sampling

from .pdfs import pdf_of

pytestmark = pytest.mark.anyio

FAQ = """# Shop FAQ

## Returns

You can return any item within 30 days of delivery for a full refund.

## Shipping

Orders ship within two working days. Express shipping costs 9 euros.

## 退货

收到商品后三十天内可以申请退货退款。
"""


def test_bm25_prefers_rarer_terms_and_shorter_passages() -> None:
    postings = [
        Posting("refund", 1, 1, 10),
        Posting("refund", 2, 1, 100),
        Posting("the", 1, 5, 10),
        Posting("the", 2, 5, 100),
        Posting("the", 3, 5, 10),
    ]
    found = scores(["refund", "the"], postings, 3, 40.0)
    assert found[1] > found[2] > found[3]  # the shorter passage with the rare term first


async def test_ingest_retrieve_reindex_and_remove(db: Database, tmp_path: Path) -> None:
    store, knowledge = KnowledgeStore(db), Knowledge(KnowledgeStore(db))
    (tmp_path / "shop").mkdir()
    faq = tmp_path / "shop" / "faq.md"
    faq.write_text(FAQ, encoding="utf-8")
    (tmp_path / "shop" / "manual.pdf").write_bytes(pdf_of(["Warranty lasts two years."]))
    (tmp_path / "shop" / "notes.bin").write_bytes(b"ignored: not a kind it reads")
    files = files_of([tmp_path / "shop"])
    assert [f.name for f in files] == ["faq.md", "manual.pdf"]
    done = await ingest(store, "base/shop", None, files)
    assert (done.added, done.unchanged, done.failed) == (2, 0, [])

    found = await knowledge.retrieve(["base/shop"], None, "How do I get a refund?", 2)
    assert found[0].passage.heading == "Returns"
    assert found[0].citation()["source"] == str(faq)
    assert found[0].citation()["section"] == "Returns" and found[0].number == 1
    chinese = await knowledge.retrieve(["base/shop"], None, "怎么退货", 1)
    assert chinese[0].passage.heading == "退货"
    pdf = await knowledge.retrieve(["base/shop"], None, "how long is the warranty", 1)
    assert pdf[0].citation()["page"] == 1

    again = await ingest(store, "base/shop", None, files)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)  # nothing re-read
    faq.write_text(FAQ.replace("30 days", "60 days"), encoding="utf-8")
    changed = await ingest(store, "base/shop", None, files)
    assert (changed.updated, changed.unchanged) == (1, 1)
    found = await knowledge.retrieve(["base/shop"], None, "refund", 1)
    assert "60 days" in found[0].passage.text
    documents = await store.documents(["base/shop"], EVERYONE)
    assert len(documents) == 2 and sum(d.passages for d in documents) >= 4

    assert await store.remove("base/shop", str(faq))
    assert not await store.remove("base/shop", str(faq))
    assert await knowledge.retrieve(["base/shop"], None, "refund", 1) == []


async def test_an_organisations_passages_are_never_read_for_another(
    db: Database, tmp_path: Path
) -> None:
    store, knowledge = KnowledgeStore(db), Knowledge(KnowledgeStore(db))
    secret = tmp_path / "acme.txt"
    secret.write_text("Acme's merger code name is BLUEHERON.", encoding="utf-8")
    public = tmp_path / "public.txt"
    public.write_text("Mergers need approval from the board.", encoding="utf-8")
    await ingest(store, "base/finance", None, [public])
    await ingest(store, "base/finance/acme", "org_acme", [secret])
    chain = ["base/finance", "base/finance/acme"]
    own = await knowledge.retrieve(chain, "org_acme", "merger code name", 5)
    assert {s.passage.source for s in own} == {str(secret), str(public)}  # inherited too
    # Even asked for Acme's layer by name, another organisation's queries match no row of it.
    other = await knowledge.retrieve(chain, "org_rival", "merger code name BLUEHERON", 5)
    assert [s.passage.source for s in other] == [str(public)]
    assert await knowledge.retrieve(chain, None, "BLUEHERON", 5) == []
    assert await store.documents(chain, "org_rival") == (await store.documents(chain, None))
    assert len(await store.documents(chain, EVERYONE)) == 2


def test_sources_go_before_the_callers_words() -> None:
    from modelgrid.knowledge.retrieval import Source
    from modelgrid.knowledge.store import StoredPassage

    passage = StoredPassage(
        1, "doc_1", "base/shop", "faq.md", "Shop FAQ", "Returns", None, "30 days."
    )
    sources = [Source(1, passage, 2.5)]
    chat = GenerationRequest(
        Sampling(8, None, None, 0.0, 0.0), messages=[{"role": "user", "content": "q"}]
    )
    made = with_sources(chat, sources)
    assert made.messages is not None and made.messages[0]["role"] == "system"
    assert "[1] Shop FAQ — Returns (faq.md)\n30 days." in made.messages[0]["content"]
    assert made.messages[1] == {"role": "user", "content": "q"}
    assert with_sources(chat, []) is chat
    assert sources_block(sources).startswith("Answer from the sources below")


async def test_the_migration_matches_the_tables_and_downgrades(db: Database) -> None:
    from modelgrid.storage.tables import knowledge_documents, knowledge_passages, knowledge_terms

    from ..storage.test_ledger import migration_round_trip

    mine = (knowledge_documents, knowledge_passages, knowledge_terms)
    await migration_round_trip(db, mine, "0010", "provenance_index")


def test_reciprocal_rank_fusion_puts_what_both_rank_well_first() -> None:
    from modelgrid.knowledge.retrieval import fuse

    fused = fuse([[1, 2, 3], [3, 1, 4]])
    assert [pid for pid, _ in fused] == [1, 3, 2, 4]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


# A stand-in for an embedding model in this unit test: texts that share a concept point the
# same way, whatever their words (the end-to-end tests use the embedded engine's own).
CONCEPTS = {"return": 0, "refund": 0, "send back": 0, "ship": 1, "deliver": 1, "warranty": 2}


async def concept_vectors(texts: list[str]) -> np.ndarray:
    out = np.full((len(texts), 4), 0.01, dtype=np.float32)
    for row, text in enumerate(texts):
        for word, concept in CONCEPTS.items():
            if word in text.lower():
                out[row, concept] += 1
    normalised: np.ndarray = out / np.linalg.norm(out, axis=1, keepdims=True)
    return normalised


async def test_embeddings_find_what_words_miss_and_follow_changes(
    db: Database, tmp_path: Path
) -> None:
    store = KnowledgeStore(db)
    knowledge = Knowledge(store, concept_vectors, "concepts", candidates=10)
    faq = tmp_path / "faq.md"
    faq.write_text(FAQ, encoding="utf-8")
    done = await ingest(
        store, "base/shop", None, [faq], embed=concept_vectors, embedded_with="concepts"
    )
    assert done.added == 1
    # "send back" shares no index term with the Returns section; its embedding does.
    found = await knowledge.retrieve(["base/shop"], None, "Could I send back my kettle?", 1)
    assert found[0].passage.heading == "Returns"
    assert await KnowledgeStore(db).digest("base/shop", str(faq)) is not None
    again = await ingest(
        store, "base/shop", None, [faq], embed=concept_vectors, embedded_with="concepts"
    )
    assert again.unchanged == 1
    other_model = await ingest(
        store, "base/shop", None, [faq], embed=concept_vectors, embedded_with="v2"
    )
    assert other_model.updated == 1  # embedded by another model: indexed again
    # The cached embeddings follow the change (new passages, new ids).
    knowledge.model = "v2"
    found = await knowledge.retrieve(["base/shop"], None, "Could I send back my kettle?", 1)
    assert found[0].passage.heading == "Returns"


async def test_a_very_long_question_is_still_answered(db: Database, tmp_path: Path) -> None:
    store = KnowledgeStore(db)
    faq = tmp_path / "faq.md"
    faq.write_text(FAQ, encoding="utf-8")
    await ingest(store, "base/shop", None, [faq], embed=concept_vectors, embedded_with="c")
    knowledge = Knowledge(store, concept_vectors, "c")
    rambling = "refund please " + " ".join(f"word{i}" for i in range(50_000))
    found = await knowledge.retrieve(["base/shop"], None, rambling, 2)
    assert found and found[0].passage.heading == "Returns"
