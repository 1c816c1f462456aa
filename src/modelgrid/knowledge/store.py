"""Layers' documents, their passages and BM25 postings, in the database.

Every read takes the layers and the organisation it is for and puts both in its ``WHERE``:
rows of another organisation's layer are never fetched, so they cannot be leaked by a bug
further on. ``EVERYONE`` (the operator's own keys) reads without the organisation filter.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import sqlalchemy as sa

from ..storage.database import Database
from ..storage.tables import knowledge_documents, knowledge_passages, knowledge_terms
from .chunking import Passage
from .tokens import terms

EVERYONE: Final = "*"  # the ``org`` of a read that any organisation's rows may answer
_BATCH = 500


@dataclass(frozen=True, slots=True)
class StoredDocument:
    id: str
    layer: str
    org_id: str | None
    source: str
    title: str
    sha256: str
    passages: int
    pages: int
    embedded_with: str
    updated_at: datetime

    def card(self) -> dict[str, Any]:
        """As the API and the CLI's ``--json`` show it."""
        return {
            "id": self.id,
            "layer": self.layer,
            "source": self.source,
            "title": self.title,
            "passages": self.passages,
            "pages": self.pages,
            "sha256": self.sha256,
            "embedded_with": self.embedded_with,
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class StoredPassage:
    id: int
    document_id: str
    layer: str
    source: str
    title: str
    heading: str
    page: int | None
    text: str


@dataclass(frozen=True, slots=True)
class Statistics:
    """What the passages a search covers are: how many, their mean length, and the newest
    one's id (with the count, it tells whether they changed since last read)."""

    passages: int
    mean_length: float
    newest: int


@dataclass(frozen=True, slots=True)
class Posting:
    term: str
    passage_id: int
    tf: int
    length: int


class KnowledgeStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def digest(self, layer: str, source: str) -> tuple[str, str] | None:
        """The stored SHA-256 of ``source`` in ``layer``, and the model its passages were
        embedded with; None when it is not there."""
        d = knowledge_documents.c
        async with self._db.engine.connect() as conn:
            found = (
                await conn.execute(
                    sa.select(d.sha256, d.embedded_with).where(d.layer == layer, d.source == source)
                )
            ).first()
        return None if found is None else (str(found.sha256), str(found.embedded_with))

    async def put(
        self,
        layer: str,
        org_id: str | None,
        source: str,
        title: str,
        sha256: str,
        pages: int,
        passages: Sequence[Passage],
        embeddings: np.ndarray | None = None,
        embedded_with: str = "",
    ) -> str:
        """Store a document in one transaction, replacing what ``source`` held in ``layer``
        before; returns its id. ``embeddings``: a row per passage, made by ``embedded_with``."""
        document_id = "doc_" + secrets.token_hex(8)
        now = datetime.now(UTC)
        async with self._db.begin_write() as conn:
            await _delete(conn, layer, source)
            await conn.execute(
                knowledge_documents.insert().values(
                    id=document_id,
                    layer=layer,
                    org_id=org_id,
                    source=source,
                    title=title[:500],
                    sha256=sha256,
                    passages=len(passages),
                    pages=pages,
                    embedded_with=embedded_with if embeddings is not None else "",
                    updated_at=now,
                )
            )
            for start in range(0, len(passages), _BATCH):
                batch = passages[start : start + _BATCH]
                counted = [Counter(terms(p.text)) for p in batch]
                ids = (
                    await conn.execute(
                        knowledge_passages.insert().returning(knowledge_passages.c.id),
                        [
                            {
                                "document_id": document_id,
                                "layer": layer,
                                "org_id": org_id,
                                "ordinal": start + i,
                                "heading": p.heading[:500],
                                "page": p.page,
                                "text": p.text,
                                "length": sum(c.values()),
                                "embedding": None
                                if embeddings is None
                                else embeddings[start + i].astype("<f4").tobytes(),
                            }
                            for i, (p, c) in enumerate(zip(batch, counted, strict=True))
                        ],
                    )
                ).scalars()
                postings = [
                    {
                        "layer": layer,
                        "term": term,
                        "passage_id": pid,
                        "org_id": org_id,
                        "tf": tf,
                        "length": sum(c.values()),
                    }
                    for pid, c in zip(ids, counted, strict=True)
                    for term, tf in c.items()
                ]
                if postings:
                    await conn.execute(knowledge_terms.insert(), postings)
        return document_id

    async def remove(self, layer: str, source: str) -> bool:
        async with self._db.begin_write() as conn:
            return await _delete(conn, layer, source)

    async def remove_id(self, document_id: str, layer: str, org: str | None) -> bool:
        """Remove a document by its id, if it is ``layer``'s and ``org`` may read it."""
        d = knowledge_documents.c
        async with self._db.begin_write() as conn:
            source = await conn.scalar(
                sa.select(d.source).where(
                    d.id == document_id, d.layer == layer, *_org(d.org_id, org)
                )
            )
            return source is not None and await _delete(conn, layer, str(source))

    async def documents(self, layers: Sequence[str], org: str | None) -> list[StoredDocument]:
        d = knowledge_documents.c
        query = sa.select(knowledge_documents).where(d.layer.in_(layers), *_org(d.org_id, org))
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(d.layer, d.source))).all()
        return [StoredDocument(**row._mapping) for row in rows]

    async def statistics(self, layers: Sequence[str], org: str | None) -> Statistics:
        p = knowledge_passages.c
        query = sa.select(sa.func.count(), sa.func.avg(p.length), sa.func.max(p.id)).where(
            p.layer.in_(layers), *_org(p.org_id, org)
        )
        async with self._db.engine.connect() as conn:
            count, mean, newest = (await conn.execute(query)).one()
        return Statistics(int(count or 0), float(mean or 0.0), int(newest or 0))

    async def vectors(
        self, layers: Sequence[str], org: str | None, model: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ids and embeddings (one row each) of the passages ``model`` embedded."""
        p, d = knowledge_passages.c, knowledge_documents.c
        query = (
            sa.select(p.id, p.embedding)
            .join(knowledge_documents, d.id == p.document_id)
            .where(
                p.layer.in_(layers),
                *_org(p.org_id, org),
                d.embedded_with == model,
                p.embedding.is_not(None),
            )
        )
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        ids = np.fromiter((r.id for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r.embedding for r in rows), dtype="<f4")
        return ids, matrix.reshape(len(rows), -1).astype(np.float32)

    async def postings(
        self, layers: Sequence[str], org: str | None, wanted: Sequence[str]
    ) -> list[Posting]:
        t = knowledge_terms.c
        query = sa.select(t.term, t.passage_id, t.tf, t.length).where(
            t.layer.in_(layers), t.term.in_(wanted), *_org(t.org_id, org)
        )
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Posting(r.term, r.passage_id, r.tf, r.length) for r in rows]

    async def passages(
        self, ids: Sequence[int], layers: Sequence[str], org: str | None
    ) -> dict[int, StoredPassage]:
        p, d = knowledge_passages.c, knowledge_documents.c
        query = (
            sa.select(p.id, p.document_id, p.layer, d.source, d.title, p.heading, p.page, p.text)
            .join(knowledge_documents, d.id == p.document_id)
            .where(p.id.in_(ids), p.layer.in_(layers), *_org(p.org_id, org))
        )
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {r.id: StoredPassage(**r._mapping) for r in rows}


def _org(column: sa.ColumnElement[Any], org: str | None) -> list[sa.ColumnElement[bool]]:
    """Rows of layers without an organisation, and of ``org``'s own."""
    if org == EVERYONE:
        return []
    if org is None:
        return [column.is_(None)]
    return [sa.or_(column.is_(None), column == org)]


async def _delete(conn: Any, layer: str, source: str) -> bool:
    d, p = knowledge_documents.c, knowledge_passages.c
    document_id = await conn.scalar(sa.select(d.id).where(d.layer == layer, d.source == source))
    if document_id is None:
        return False
    ids = sa.select(p.id).where(p.document_id == document_id)
    await conn.execute(knowledge_terms.delete().where(knowledge_terms.c.passage_id.in_(ids)))
    await conn.execute(knowledge_passages.delete().where(p.document_id == document_id))
    await conn.execute(knowledge_documents.delete().where(d.id == document_id))
    return True
