"""The LSH index's rows: what ContentStore writes for each stored response, and what a lookup
reads back.

One narrow row per band of a response: ``(band_key, ref)``, both 64-bit integers, the primary
key and all the table holds (SQLite keeps it ``WITHOUT ROWID``, so the row is the key), where
``band_key`` is a band's hash (its number included) and ``ref`` the response's, also stored on
its ``stored_contents`` row. A lookup is one probe per band. The first layout, a row of band,
hash, content id and choice with a second index for retention, cost four times as much to
write (docs/benchmarks.md); retention now recomputes a response's band keys from its stored
choices and deletes those rows by their key.

Each choice of a response is indexed (a response with n choices is n texts); a band two of
them share is one row. The explicit label is cut out before indexing: every response of a
plan carries the same label, which would otherwise make short unrelated responses look alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from ..storage.tables import provenance_index, stored_contents
from .minhash import MinHasher
from .shingles import Hashes, shingle_hashes, shingle_hashes_many

INDEX_COLUMNS = ("band_key", "ref")
# insert_new's ON CONFLICT target: the primary key, so a replayed response adds nothing.
INDEX_KEY = ", ".join(INDEX_COLUMNS)

IndexRow = tuple[int, int]


def content_ref(content_id: str) -> int:
    """A response's 63-bit reference: its content id hashed. Two ids sharing one (about one
    chance in 10**9 among 10**5 million responses) only make each a candidate for the other's
    lookups, where the exact comparison tells them apart."""
    digest = hashlib.blake2b(content_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def indexed_text(choice: str, label: str) -> str:
    """A choice as indexed and compared: without the explicit label it was served with."""
    return choice.replace(label, " ") if label else choice


def choice_shingles(choices: Sequence[str], label: str) -> list[Hashes]:
    return [shingle_hashes(indexed_text(choice, label)) for choice in choices]


def index_rows(
    hasher: MinHasher, responses: Sequence[tuple[str, Sequence[str], str]]
) -> list[IndexRow]:
    """``index_array`` as tuples."""
    return [(key, ref) for key, ref in index_array(hasher, responses).tolist()]


def index_array(
    hasher: MinHasher, responses: Sequence[tuple[str, Sequence[str], str]]
) -> npt.NDArray[np.int64]:
    """The rows of responses given as ``(content_id, choices, label)``, an (n × 2) array of
    ``(band_key, ref)`` in key order; none for a choice without any words, one for a band two
    choices of a response share. All their choices are hashed at once, and the rows are never
    Python objects: a flush of a second's responses (a thousand or so, 32 rows each) spent
    most of its 30 µs a response making, sorting and flattening tuples (docs/benchmarks.md).

    In key order, a batch walks the index's B-tree from one end to the other instead of
    jumping about it: SQLite inserted 16,000 rows into a table of 600,000 at 4.9 µs a row
    sorted, 11.3 shuffled (docs/benchmarks.md)."""
    texts: list[str] = []
    owners: list[int] = []
    refs: list[int] = []
    for owner, (content_id, choices, label) in enumerate(responses):
        refs.append(content_ref(content_id))
        texts += (indexed_text(choice, label) for choice in choices)
        owners += [owner] * len(choices)
    which, keys = hasher.band_matrix(shingle_hashes_many(texts))
    text_refs = np.array(refs, dtype=np.int64)[np.array(owners, dtype=np.intp)]
    band_keys = keys.ravel()
    band_refs = np.repeat(text_refs[which], hasher.bands)
    order = np.lexsort((band_refs, band_keys))  # by key, then ref: the primary key's order
    band_keys, band_refs = band_keys[order], band_refs[order]
    distinct = np.ones(len(band_keys), dtype=bool)
    distinct[1:] = (band_keys[1:] != band_keys[:-1]) | (band_refs[1:] != band_refs[:-1])
    rows: npt.NDArray[np.int64] = np.column_stack((band_keys[distinct], band_refs[distinct]))
    return rows


def candidates_query(bands: int, by_org: bool) -> sa.Select[tuple[Any, ...]]:
    """Stored responses sharing a band with the query's, most shared bands first, with what
    ranking them needs (their choices and label) and what a match reports.

    Parameters: ``hash_0`` … (the query's band hashes), ``cap`` (how many candidates) and,
    ``by_org``, ``org_id``. Built once per lookup object.

    The band count orders candidates by how likely they are to be close (about
    bands × similarity**rows of them match), so the cap drops the least likely first when a
    common phrase makes many responses share a band."""
    ix, s = provenance_index.c, stored_contents.c
    keys = [sa.bindparam(f"hash_{i}", type_=sa.BigInteger()) for i in range(bands)]
    # Grouped in a subquery, which the planners keep whole: the bands drive the query, and
    # the responses are then read by their ref, never all of an organisation's by org_id.
    matched = (
        sa.select(ix.ref, sa.func.count().label("hits"))
        .where(ix.band_key.in_(keys))
        .group_by(ix.ref)
        .subquery("matched")
    )
    m = matched.c
    query = sa.select(s.content_id, s.created_at, s.model, s.choices, s.label, m.hits).join(
        stored_contents, s.ref == m.ref
    )
    if by_org:
        query = query.where(s.org_id == sa.bindparam("org_id", type_=sa.String()))
    return query.order_by(m.hits.desc(), s.content_id).limit(
        sa.bindparam("cap", type_=sa.Integer())
    )


def candidates_parameters(bands: Sequence[int], org_id: str | None, cap: int) -> dict[str, Any]:
    found: dict[str, Any] = {f"hash_{i}": value for i, value in enumerate(bands)}
    found["cap"] = cap
    if org_id is not None:
        found["org_id"] = org_id
    return found
