"""The LSH index's rows: what ContentStore writes for each stored response, and what a lookup
reads back.

Each choice of a response is indexed on its own (a response with n choices is n texts), under
``(band, band_hash) → (content_id, choice)``; the primary key starts with the band and its
hash, so a lookup is one index probe per band. The explicit label is cut out before indexing:
every response of a plan carries the same label, which would otherwise make short unrelated
responses look alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ..storage.tables import provenance_bands, stored_contents
from .minhash import MinHasher
from .shingles import Hashes, shingle_hashes

BAND_COLUMNS = ("band", "band_hash", "content_id", "choice")
# insert_new's ON CONFLICT target: the primary key, so a replayed response adds nothing.
BAND_KEY = ", ".join(BAND_COLUMNS)

BandRow = tuple[int, int, str, int]


def indexed_text(choice: str, label: str) -> str:
    """A choice as indexed and compared: without the explicit label it was served with."""
    return choice.replace(label, " ") if label else choice


def choice_shingles(choices: Sequence[str], label: str) -> list[Hashes]:
    return [shingle_hashes(indexed_text(choice, label)) for choice in choices]


def band_rows(
    hasher: MinHasher, content_id: str, choices: Sequence[str], label: str
) -> list[BandRow]:
    """Every band of every choice; none for a choice without any words."""
    rows: list[BandRow] = []
    for number, shingles in enumerate(choice_shingles(choices, label)):
        for band, value in enumerate(hasher.bands_of(shingles)):
            rows.append((band, value, content_id, number))
    return rows


def candidates_query(bands: int, by_org: bool) -> sa.Select[tuple[Any, ...]]:
    """Stored responses sharing a band with the query's, most shared bands first, with what
    ranking them needs (their choices and label) and what a match reports.

    Parameters: ``hash_0`` … (the query's band hashes), ``cap`` (how many candidates) and,
    ``by_org``, ``org_id``. Built once per lookup object: an expression of 64 comparisons
    costs more to build than the query takes to run.

    The band count orders candidates by how likely they are to be close (about
    bands × similarity**rows of them match), so the cap drops the least likely first when a
    common phrase makes many responses share a band."""
    b, s = provenance_bands.c, stored_contents.c
    probe = sa.or_(
        *(
            sa.and_(b.band == i, b.band_hash == sa.bindparam(f"hash_{i}", type_=sa.BigInteger()))
            for i in range(bands)
        )
    )
    # Grouped in a subquery, which the planners keep whole: the bands drive the query, and
    # the responses are then read by primary key, never all of an organisation's by org_id.
    matched = (
        sa.select(b.content_id, sa.func.count().label("hits"))
        .where(probe)
        .group_by(b.content_id)
        .subquery("matched")
    )
    m = matched.c
    query = sa.select(s.content_id, s.created_at, s.model, s.choices, s.label, m.hits).join(
        stored_contents, s.content_id == m.content_id
    )
    if by_org:
        query = query.where(s.org_id == sa.bindparam("org_id", type_=sa.String()))
    return query.order_by(m.hits.desc(), m.content_id).limit(
        sa.bindparam("cap", type_=sa.Integer())
    )


def candidates_parameters(bands: Sequence[int], org_id: str | None, cap: int) -> dict[str, Any]:
    found: dict[str, Any] = {f"hash_{i}": value for i, value in enumerate(bands)}
    found["cap"] = cap
    if org_id is not None:
        found["org_id"] = org_id
    return found
