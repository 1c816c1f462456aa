"""MinHash signatures and their LSH bands (pure; numpy).

A signature is, for each of ``num_perm`` hash functions, the smallest hash of the text's
shingles; two texts agree at a position with probability equal to the Jaccard similarity of
their shingle sets. Banding cuts the signature into ``bands`` runs of ``rows`` values and
hashes each run: texts of similarity s share at least one band with probability
1 - (1 - s**rows)**bands, an S-curve whose steep part sits near (1/bands)**(1/rows).

The hash functions are multiply-add-shift over the 64-bit shingle hashes (Dietzfelbinger's
universal family: ((a·x + b) mod 2**64) >> 32 with a odd), drawn from a fixed seed: bands are
stored, so the functions are part of the schema and must never change for a stored index.
Each band's hash includes its number, so one column holds every band.

Texts are hashed many at a time (``bands_of_many``): one response's few dozen shingles cost
numpy's fixed overhead per operation, about 0.2 ms; a batch of them costs that once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .shingles import Hashes, mix

Signature = npt.NDArray[np.uint32]

_SEED = 0x4D47_5052_4F56  # "MGPROV"
_CHUNK = 8192  # shingles at a time: a (num_perm × chunk) matrix of 64-bit values, 4 MiB
_BAND_SALT = np.uint64(0xD6E8FEB86659FD93)


@dataclass(frozen=True)
class MinHasher:
    bands: int = 32
    rows: int = 2
    seed: int = _SEED
    _a: npt.NDArray[np.uint64] = field(init=False, repr=False, compare=False)
    _b: npt.NDArray[np.uint64] = field(init=False, repr=False, compare=False)
    _salt: npt.NDArray[np.uint64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.bands < 1 or self.rows < 1:
            raise ValueError("bands and rows must be at least 1")
        rng = np.random.default_rng(self.seed)
        top = np.iinfo(np.uint64).max
        a = rng.integers(0, top, size=self.num_perm, dtype=np.uint64, endpoint=True)
        b = rng.integers(0, top, size=self.num_perm, dtype=np.uint64, endpoint=True)
        a |= np.uint64(1)
        salt = np.arange(1, self.bands + 1, dtype=np.uint64) * _BAND_SALT
        a.flags.writeable = b.flags.writeable = salt.flags.writeable = False
        object.__setattr__(self, "_a", a[:, None])
        object.__setattr__(self, "_b", b[:, None])
        object.__setattr__(self, "_salt", salt)

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows

    def signature(self, shingles: Hashes) -> Signature:
        """The signature of a non-empty set of shingle hashes."""
        if len(shingles) == 0:
            raise ValueError("an empty text has no signature")
        low = np.full(self.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
        for start in range(0, len(shingles), _CHUNK):
            chunk = shingles[None, start : start + _CHUNK]
            hashed = ((self._a * chunk + self._b) >> np.uint64(32)).astype(np.uint32)
            np.minimum(low, hashed.min(axis=1), out=low)
        return low

    def band_hashes(self, signature: Signature) -> list[int]:
        """One signed 64-bit hash per band (what a BIGINT column holds), band 0 first."""
        keys: list[int] = self._band_keys(signature[None, :])[0].tolist()
        return keys

    def bands_of(self, shingles: Hashes) -> list[int]:
        """The band hashes of a text's shingles; none for a text without any."""
        return self.bands_of_many([shingles])[0]

    def bands_of_many(self, texts: Sequence[Hashes]) -> list[list[int]]:
        """``bands_of`` of each text, hashed together a chunk of shingles at a time."""
        found: list[list[int]] = [[] for _ in texts]
        which, keys = self.band_matrix(texts)
        for i, row in zip(which.tolist(), keys.tolist(), strict=True):
            found[i] = row
        return found

    def band_matrix(
        self, texts: Sequence[Hashes]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
        """The band hashes of those texts that have shingles, a row each (texts × bands), and
        which texts they are: ``bands_of_many`` without a Python list per text."""
        which: list[int] = []
        parts: list[npt.NDArray[np.int64]] = []
        group: list[int] = []
        size = 0
        for i, shingles in enumerate(texts):
            if len(shingles) == 0:
                continue
            if group and size + len(shingles) > _CHUNK:
                parts.append(self._keys_of(texts, group))
                which += group
                group, size = [], 0
            group.append(i)
            size += len(shingles)
        if group:
            parts.append(self._keys_of(texts, group))
            which += group
        if not parts:
            return np.empty(0, dtype=np.intp), np.empty((0, self.bands), dtype=np.int64)
        return np.array(which, dtype=np.intp), np.concatenate(parts)

    def _keys_of(self, texts: Sequence[Hashes], group: list[int]) -> npt.NDArray[np.int64]:
        if len(group) == 1:  # maybe more than a chunk: signature() takes it in chunks
            signatures = self.signature(texts[group[0]])[None, :]
        else:
            joined = np.concatenate([texts[i] for i in group])
            starts = np.zeros(len(group), dtype=np.intp)
            np.cumsum([len(texts[i]) for i in group[:-1]], out=starts[1:])
            hashed = ((self._a * joined[None, :] + self._b) >> np.uint64(32)).astype(np.uint32)
            signatures = np.minimum.reduceat(hashed, starts, axis=1).T
        return self._band_keys(signatures)

    def _band_keys(self, signatures: npt.NDArray[np.uint32]) -> npt.NDArray[np.int64]:
        """(texts × num_perm) signatures to (texts × bands) band hashes."""
        runs = signatures.reshape(len(signatures), self.bands, self.rows).astype(np.uint64)
        combined = runs[:, :, 0].copy()
        for row in range(1, self.rows):
            combined = combined * np.uint64(0x9E3779B97F4A7C15) + runs[:, :, row]
        keys: npt.NDArray[np.int64] = mix(combined ^ self._salt).view(np.int64)
        return keys


def estimated_similarity(a: Signature, b: Signature) -> float:
    """The share of positions where two signatures agree: an unbiased estimate of Jaccard."""
    return float(np.count_nonzero(a == b)) / len(a)


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """How likely a stored text of ``similarity`` shares at least one band with the query."""
    return float(1.0 - (1.0 - similarity**rows) ** bands)
