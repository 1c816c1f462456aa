"""Retrieval for a layer's request: the passages of its knowledge (and its parents') that best
answer the prompt, put in front of it with their sources, and cited in the response."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..types import GenerationRequest
from .bm25 import scores
from .store import KnowledgeStore, StoredPassage
from .tokens import terms

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
    def __init__(self, store: KnowledgeStore) -> None:
        self.store = store

    async def retrieve(
        self, layers: Sequence[str], org: str | None, query: str, limit: int
    ) -> list[Source]:
        """The ``limit`` best passages of ``layers`` for ``query``, among the rows ``org`` may
        read (``store.EVERYONE``: any)."""
        wanted = terms(query)
        if not wanted or not layers or limit <= 0:
            return []
        count, mean = await self.store.statistics(layers, org)
        if not count:
            return []
        postings = await self.store.postings(layers, org, sorted(set(wanted)))
        ranked = sorted(scores(wanted, postings, count, mean).items(), key=lambda kv: -kv[1])
        best = ranked[:limit]
        found = await self.store.passages([pid for pid, _ in best], layers, org)
        kept = [(found[pid], score) for pid, score in best if pid in found]
        return [Source(i, passage, score) for i, (passage, score) in enumerate(kept, 1)]


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


def query_of(messages: Sequence[dict[str, str]]) -> str:
    """What to retrieve for: the last thing the user said."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message.get("content", "")
    return ""
