"""Find the stored responses a text is a copy, or a lightly edited copy, of.

The text's LSH bands select candidates through the index (provenance/index.py: one probe per
band, never a scan of the table); the candidates most likely to be close are then read and
ranked by the exact Jaccard similarity of their shingles and the text's, each response scored
by its closest choice.

Defaults, measured on real model outputs (the GSM8K answers of two models, 2,600 texts of one
formulaic kind, the hard case) with benchmarks/provenance_lookup.py: with 3-token shingles a
copy with one word in ten replaced and sentences swapped keeps a similarity of 0.39 or more
(the 1st percentile), one in twenty 0.53; the most similar unrelated answer to another
question stays under 0.25. THRESHOLD = 0.3 sits between. 32 bands of 2 rows make a stored
text of similarity 0.3 a candidate with probability 0.95, and 0.4 with 0.996.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson

from ..storage.contents import ContentStore, as_utc
from .index import candidates_parameters, candidates_query, choice_shingles, indexed_text
from .shingles import jaccard, shingle_hashes

THRESHOLD = 0.3
# Candidates read and compared exactly per match asked for, and at least: enough that a
# common phrase shared with many stored responses does not crowd out the real source.
_CANDIDATES_PER_MATCH, _MIN_CANDIDATES = 10, 50


@dataclass(frozen=True, slots=True)
class Match:
    content_id: str
    similarity: float  # Jaccard similarity of shingles, in [0, 1]
    created_at: datetime
    model: str


class Provenance:
    def __init__(self, contents: ContentStore) -> None:
        self.contents = contents
        self.hasher = contents.hasher  # the store's: queries must be banded as it indexes
        self._queries = {
            by_org: candidates_query(self.hasher.bands, by_org) for by_org in (False, True)
        }

    async def lookup(
        self,
        text: str,
        limit: int = 5,
        threshold: float = THRESHOLD,
        org_id: str | None = None,
    ) -> list[Match]:
        """Stored responses at least ``threshold`` similar to ``text``, best first; only
        ``org_id``'s when given. This process's pending responses are flushed first."""
        if limit < 1 or not 0.0 <= threshold <= 1.0:
            raise ValueError("limit must be at least 1 and threshold in [0, 1]")
        query = shingle_hashes(text)
        bands = self.hasher.bands_of(query)
        if not bands:
            return []
        await self.contents.flush()
        db = self.contents.db
        cap = max(_MIN_CANDIDATES, limit * _CANDIDATES_PER_MATCH)
        async with db.engine.connect() as conn:
            statement = self._queries[org_id is not None]
            params = candidates_parameters(bands, org_id, cap)
            rows = (await conn.execute(statement, params)).all()
        found = []
        # A copy may carry the label it was served with: compared without it, as stored.
        unlabelled = {"": query}
        for row in rows:
            if row.label not in unlabelled:
                unlabelled[row.label] = shingle_hashes(indexed_text(text, row.label))
            mine = unlabelled[row.label]
            choices = orjson.loads(row.choices)
            best = max((jaccard(mine, s) for s in choice_shingles(choices, row.label)), default=0.0)
            if best >= threshold:
                found.append(Match(row.content_id, best, as_utc(row.created_at), row.model))
        found.sort(key=lambda m: (-m.similarity, m.content_id))
        return found[:limit]
