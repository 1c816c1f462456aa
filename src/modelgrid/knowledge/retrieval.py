"""Retrieval for a layer's request: the passages of its knowledge (and its parents') that best
answer the prompt, put in front of it with their sources, and cited in the response."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..types import GenerationRequest
from .bm25 import scores
from .store import KnowledgeStore, Statistics, StoredPassage
from .tokens import terms

_CACHED = 64  # (layers, organisation) pairs whose embeddings stay in memory
_MAX_TERMS = 128  # distinct query terms looked up
_MAX_EMBEDDED = 2000  # characters of the question embedded (an embedding model's context is short)

# Texts to their embeddings, a row each of length 1.
Embed = Callable[[list[str]], Awaitable[np.ndarray]]

INSTRUCTION = (
    "Answer from the sources below where they apply, and cite each one you use by its number "
    "in square brackets, like [1]. If they do not answer the question, say so."
)


@dataclass(frozen=True, slots=True)
class Source:
    number: int  # how the prompt and the answer cite it: [1], [2], ...
    passage: StoredPassage
    score: float

    def citation(self) -> dict[str, Any]:
        p = self.passage
        found: dict[str, Any] = {
            "index": self.number,
            "document_id": p.document_id,
            "source": p.source,
            "title": p.title,
            "layer": p.layer,
            "score": round(self.score, 4),
        }
        if p.heading:
            found["section"] = p.heading
        if p.page is not None:
            found["page"] = p.page
        return found


class Knowledge:
    """Retrieval over layers' passages: BM25 alone, or fused with embedding similarity when
    ``embed`` (the embedding model's, ``model``) is given."""

    def __init__(
        self,
        store: KnowledgeStore,
        embed: Embed | None = None,
        model: str = "",
        candidates: int = 50,
    ) -> None:
        self.store = store
        self.embed, self.model, self.candidates = embed, model, candidates
        # Each (layers, organisation)'s embeddings, kept while its passages do not change;
        # the least recently used go first beyond ``_CACHED``.
        self._vectors: OrderedDict[tuple[tuple[str, ...], str | None], _Vectors] = OrderedDict()

    async def retrieve(
        self, layers: Sequence[str], org: str | None, query: str, limit: int
    ) -> list[Source]:
        """The ``limit`` best passages of ``layers`` for ``query``, among the rows ``org`` may
        read (``store.EVERYONE``: any)."""
        wanted = terms(query)
        if not query.strip() or not layers or limit <= 0:
            return []
        stats = await self.store.statistics(layers, org)
        if not stats.passages:
            return []
        rankings: list[list[int]] = []
        found_scores: dict[int, float] = {}
        if wanted:
            # A long message's first distinct terms: its topic, in few enough to query for.
            asked = list(dict.fromkeys(wanted))[:_MAX_TERMS]
            postings = await self.store.postings(layers, org, asked)
            found_scores = scores(wanted, postings, stats.passages, stats.mean_length)
            ranked = sorted(found_scores.items(), key=lambda kv: -kv[1])[: self.candidates]
            rankings.append([pid for pid, _ in ranked])
        if self.embed is not None:
            rankings.append(await self._similar(layers, org, stats, query))
        if len(rankings) > 1:
            found_scores = dict(fuse(rankings))
            rankings = [list(found_scores)]
        best = rankings[0][:limit] if rankings else []
        found = await self.store.passages(best, layers, org)
        kept = [found[pid] for pid in best if pid in found]
        return [
            Source(i, passage, found_scores.get(passage.id, 0.0))
            for i, passage in enumerate(kept, 1)
        ]

    async def _similar(
        self, layers: Sequence[str], org: str | None, stats: Statistics, query: str
    ) -> list[int]:
        assert self.embed is not None
        key = (tuple(layers), org)
        cached = self._vectors.get(key)
        if cached is None or cached.stamp != (stats.passages, stats.newest):
            ids, matrix = await self.store.vectors(layers, org, self.model)
            cached = _Vectors((stats.passages, stats.newest), ids, matrix)
            self._vectors[key] = cached
            while len(self._vectors) > _CACHED:
                self._vectors.popitem(last=False)
        self._vectors.move_to_end(key)
        if not len(cached.ids):
            return []
        asked = (await self.embed([query[:_MAX_EMBEDDED]]))[0]
        similarity = cached.matrix @ asked
        top = np.argsort(-similarity)[: self.candidates]
        return [int(cached.ids[i]) for i in top]


@dataclass(frozen=True, slots=True)
class _Vectors:
    stamp: tuple[int, int]
    ids: np.ndarray
    matrix: np.ndarray


def fuse(rankings: Sequence[Sequence[int]], k: int = 60) -> list[tuple[int, float]]:
    """Reciprocal rank fusion (Cormack et al., 2009): each list's rank r counts 1 / (k + r),
    so that what ranks well in both comes first, whatever the lists' score scales. Best
    first, with the fused scores."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, pid in enumerate(ranking, 1):
            fused[pid] = fused.get(pid, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda kv: -kv[1])


def sources_block(sources: Sequence[Source]) -> str:
    parts = [INSTRUCTION]
    for s in sources:
        p = s.passage
        where = " — ".join(x for x in (p.title, p.heading) if x)
        parts.append(f"[{s.number}] {where} ({p.source})\n{p.text}")
    return "\n\n".join(parts)


def with_sources(request: GenerationRequest, sources: Sequence[Source]) -> GenerationRequest:
    """The request with its sources said before the caller's own words."""
    if not sources:
        return request
    block = sources_block(sources)
    if request.messages is not None:
        return replace(request, messages=[{"role": "system", "content": block}, *request.messages])
    if isinstance(request.prompt, str):
        return replace(request, prompt=f"{block}\n\n{request.prompt}")
    return request  # token ids: nothing to put the sources in front of
