"""MinHash: signatures estimate Jaccard similarity, bands find close texts and miss far ones."""

from __future__ import annotations

import random

import numpy as np
import pytest

from modelgrid.provenance.minhash import MinHasher, candidate_probability, estimated_similarity
from modelgrid.provenance.shingles import jaccard, shingle_hashes


def words(rng: random.Random, n: int) -> list[str]:
    return [f"w{rng.randrange(5000)}" for _ in range(n)]


def test_the_hash_functions_are_fixed_by_the_seed() -> None:
    text = shingle_hashes("the same text gives the same bands in every process")
    assert MinHasher().bands_of(text) == MinHasher().bands_of(text)
    assert MinHasher(seed=2).bands_of(text) != MinHasher().bands_of(text)
    bands = MinHasher().bands_of(text)
    assert len(bands) == 32 and all(-(2**63) <= b < 2**63 for b in bands)


def test_signatures_estimate_jaccard_similarity() -> None:
    rng = random.Random(3)
    hasher = MinHasher(bands=64, rows=4)  # 256 values: a standard error of about 0.03
    for _ in range(20):
        base = words(rng, 300)
        edited = [w if rng.random() > 0.1 else f"x{rng.randrange(10**6)}" for w in base]
        a, b = shingle_hashes(" ".join(base)), shingle_hashes(" ".join(edited))
        exact = jaccard(a, b)
        assert abs(estimated_similarity(hasher.signature(a), hasher.signature(b)) - exact) < 0.12


def test_long_texts_are_hashed_in_chunks_alike() -> None:
    rng = random.Random(4)
    text = shingle_hashes(" ".join(words(rng, 20_000)))
    hasher = MinHasher()
    whole = hasher.signature(text)
    halves = np.minimum(
        hasher.signature(text[: len(text) // 2]), hasher.signature(text[len(text) // 2 :])
    )
    assert np.array_equal(whole, halves)


def test_an_empty_text_has_no_bands() -> None:
    assert MinHasher().bands_of(shingle_hashes("")) == []
    with pytest.raises(ValueError):
        MinHasher().signature(shingle_hashes(""))


def test_bands_catch_light_edits_and_miss_unrelated_texts() -> None:
    rng = random.Random(5)
    hasher = MinHasher()
    caught = missed = 0
    for _ in range(200):
        base = words(rng, 120)
        edited = [w if rng.random() > 0.05 else f"x{rng.randrange(10**6)}" for w in base]
        a = set(enumerate(hasher.bands_of(shingle_hashes(" ".join(base)))))
        b = set(enumerate(hasher.bands_of(shingle_hashes(" ".join(edited)))))
        other = set(enumerate(hasher.bands_of(shingle_hashes(" ".join(words(rng, 120))))))
        caught += bool(a & b)
        missed += not (a & other)
    assert caught == 200 and missed == 200


def test_the_s_curve() -> None:
    assert candidate_probability(0.3, 32, 2) == pytest.approx(0.951, abs=1e-3)
    assert candidate_probability(0.4, 32, 2) > 0.99
    assert candidate_probability(0.02, 32, 2) < 0.02


def test_many_texts_banded_at_once_as_each_alone() -> None:
    rng = random.Random(4)
    hasher = MinHasher()
    # Sizes either side of a chunk, so that texts are grouped and one is hashed on its own.
    texts = [shingle_hashes(" ".join(words(rng, rng.randint(0, 400)))) for _ in range(120)]
    texts.append(shingle_hashes(" ".join(words(rng, 20000))))
    assert hasher.bands_of_many(texts) == [hasher.bands_of(t) if len(t) else [] for t in texts]
    assert all(
        len(b) == hasher.bands
        for b, t in zip(hasher.bands_of_many(texts), texts, strict=True)
        if len(t)
    )
