"""BM25 over postings (pure): Lucene's formula, k1 = 1.2 and b = 0.75, the field's defaults."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from .store import Posting

K1 = 1.2
B = 0.75


def scores(
    query: Iterable[str], postings: Iterable[Posting], passages: int, mean_length: float
) -> dict[int, float]:
    """Each passage's score for ``query``'s terms. ``postings``: those of the query's terms in
    the searched passages; ``passages`` and ``mean_length``: how many passages were searched,
    and their mean length. A term repeated in the query counts once per repeat."""
    wanted: dict[str, int] = defaultdict(int)
    for term in query:
        wanted[term] += 1
    by_term: dict[str, list[Posting]] = defaultdict(list)
    for posting in postings:
        by_term[posting.term].append(posting)
    mean = mean_length or 1.0
    found: dict[int, float] = defaultdict(float)
    for term, hits in by_term.items():
        df = len(hits)
        idf = math.log(1 + (passages - df + 0.5) / (df + 0.5))
        weight = idf * wanted.get(term, 0)
        for p in hits:
            norm = K1 * (1 - B + B * p.length / mean)
            found[p.passage_id] += weight * p.tf * (K1 + 1) / (p.tf + norm)
    return dict(found)
