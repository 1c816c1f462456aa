"""Text to a set of shingle hashes: what MinHash and the exact Jaccard similarity compare.

Text is normalised (NFKC, then casefold: full-width letters and digits, ligatures and case stop
mattering) and cut into tokens: a word (a run of letters and digits) in scripts that space
their words, a single character in Chinese and Japanese, which do not. A shingle is ``size``
consecutive tokens, so English text gets word shingles and Chinese text character shingles,
and mixed text both. Punctuation and spacing are not tokens: re-punctuating text changes
nothing.

Hashes are 64-bit and stable across processes and releases (they are stored, as band
hashes): each token is hashed once with BLAKE2b, and shingles combine their tokens' hashes.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

SHINGLE_SIZE = 3

# Han (with its extensions and compatibility block), hiragana and katakana: written without
# spaces, so each character is a token. Hangul is spaced into words and is left to \w.
_CJK = "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")

# Odd 64-bit constants (from SplitMix64) for combining and mixing hashes.
_COMBINE = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)

Hashes = npt.NDArray[np.uint64]


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(normalise(text))


def mix(values: Hashes) -> Hashes:
    """SplitMix64's finaliser: every input bit reaches every output bit."""
    x = values ^ (values >> np.uint64(30))
    x = x * _MIX1
    x = x ^ (x >> np.uint64(27))
    x = x * _MIX2
    mixed: Hashes = x ^ (x >> np.uint64(31))
    return mixed


def token_hashes(words: list[str]) -> Hashes:
    return np.fromiter(map(_token_hash, words), dtype=np.uint64, count=len(words))


@lru_cache(maxsize=1 << 16)
def _token_hash(word: str) -> int:
    """A word's stable hash; the common ones, most of any text, come from the cache."""
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")


def shingle_hashes(text: str, size: int = SHINGLE_SIZE) -> Hashes:
    """The sorted, distinct hashes of the text's shingles; a text shorter than one shingle is
    one shingle of all its tokens, and a text without tokens has none."""
    return np.unique(shingles_of(token_hashes(tokens(text)), size))


def shingle_hashes_many(texts: Sequence[str], size: int = SHINGLE_SIZE) -> list[Hashes]:
    """Each text's shingle hashes, not sorted nor made distinct (MinHash needs neither),
    computed for all the texts at once: numpy's fixed cost per operation is paid once, not
    once per text."""
    words = [tokens(text) for text in texts]
    counts = np.fromiter(map(len, words), dtype=np.intp, count=len(words))
    hashed = token_hashes([word for text in words for word in text])
    starts = np.zeros(len(words) + 1, dtype=np.intp)
    np.cumsum(counts, out=starts[1:])
    if len(hashed) < size:
        return [shingles_of(hashed[starts[i] : starts[i + 1]], size) for i in range(len(words))]
    # Every run of ``size`` tokens in the joined texts; a text's own runs are contiguous.
    combined = shingles_of(hashed, size)
    found = []
    for i, count in enumerate(counts.tolist()):
        start = int(starts[i])
        if count >= size:
            found.append(combined[start : start + count - size + 1])
        else:  # shorter than one shingle, or empty
            found.append(shingles_of(hashed[start : start + count], size))
    return found


def shingles_of(hashed: Hashes, size: int = SHINGLE_SIZE) -> Hashes:
    """The shingle hashes of one text's token hashes, in order (repeats kept)."""
    n = len(hashed)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    width = min(size, n)
    count = n - width + 1
    # Position-sensitive: "a b c" and "c b a" are different shingles. numpy's uint64 array
    # arithmetic wraps, which is what a hash wants.
    combined = hashed[:count].copy()
    for offset in range(1, width):
        combined = combined * _COMBINE + hashed[offset : offset + count]
    mixed: Hashes = mix(combined)
    return mixed


def jaccard(a: Hashes, b: Hashes) -> float:
    """|a ∩ b| / |a ∪ b| of two sorted, distinct hash arrays; 0 when both are empty."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    common = len(np.intersect1d(a, b, assume_unique=True))
    return common / (len(a) + len(b) - common)
