"""Which vocabulary ids are green after a given context, for one key and one vocabulary.

Kirchenbauer et al. draw a fresh random permutation per position, seeded by the previous
token: about 0.65 ms per token over SmolLM2's 49,152 ids (``np.random.permutation``), a tenth
of the ~6.7 ms a token takes to generate. Instead the key fixes, once, ``PERMUTATIONS`` random
orders of the vocabulary and one random 64-bit value per token id. A context's seed (those
values of its tokens, mixed) picks one order and an offset into it, and the green list is the
``gamma * V`` ids that follow the offset, wrapping round: a slice of a precomputed array, so no
per-token copying or hashing over the vocabulary. Each context's list therefore holds exactly
``gamma`` of the vocabulary, uniformly chosen; and since distinct contexts get independent
offsets, whether a token is green is independent between distinct (context, token) pairs,
which is what the detector's z-score assumes. Measured on one core (``benchmarks/
watermark.py``): about 45 µs per token on the strided logits view llama-cpp-python passes,
10-20 µs of it finding the window and the rest adding delta to its 12,288 logits, against
650 µs for a permutation per token and 440 µs for a keyed hash mixed over the vocabulary.
Generation with the watermark runs at 0.95-0.98 the speed without it; most of the loss is
llama-cpp-python's per-token Python callback into any logits processor, not this.

Everything derives from the key through SHAKE-256, never numpy's generators, whose streams
may change between numpy versions: text watermarked today must still be detected after an
upgrade.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

GAMMA = 0.25
# Seeding by the two tokens before a position, not Kirchenbauer's one. Measured on SmolLM2
# (10 prompts, 200 tokens at temperature 0.8): with one, the few very common contexts (",",
# " the") keep the same list all text long and 1 text in 10 stayed under z = 4 (mean z 7.4,
# least 3.1); with two, mean 8.8 and least 6.5, and the model fell into loops less often
# (distinct bigrams 80% of tokens, against 71% with one and 70% unwatermarked). Three or four gained little more, and every
# edited token changes the score of the ``context_width + 1`` positions that see it.
CONTEXT_WIDTH = 2
# A few orders instead of one, so that a context's list is one of PERMUTATIONS * V windows
# rather than a window of a single order (which leaking lists would expose faster); 8 cost
# 4 MB and under 0.1 s at start-up.
PERMUTATIONS = 8
# Beyond this one edit spoils too many scores; it also keeps each older token's rotation in
# the seed (7 bits per step) distinct and non-zero.
MAX_CONTEXT_WIDTH = 8
_DOMAIN = b"modelgrid/watermark/v1/"
_U64 = np.uint64


def _stream(key: bytes, label: str, count: int) -> npt.NDArray[np.uint64]:
    """``count`` pseudo-random 64-bit values, a pure function of the key and the label."""
    data = hashlib.shake_256(_DOMAIN + label.encode() + b"/" + key).digest(8 * count)
    return np.frombuffer(data, dtype="<u8").astype(np.uint64)


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """MurmurHash3's 64-bit finaliser: every output bit depends on every input bit (uint64
    arrays wrap on overflow, as the hash needs)."""
    x = x ^ (x >> _U64(33))
    x = x * _U64(0xFF51AFD7ED558CCD)
    x = x ^ (x >> _U64(33))
    x = x * _U64(0xC4CEB9FE1A85EC53)
    return x ^ (x >> _U64(33))


class GreenList:
    """The key's green lists over a vocabulary of ``vocab_size`` ids, each context being the
    ``context_width`` tokens before a position."""

    def __init__(
        self,
        key: bytes,
        vocab_size: int,
        gamma: float = GAMMA,
        context_width: int = CONTEXT_WIDTH,
    ) -> None:
        if not 0 < gamma < 1:
            raise ValueError("gamma must lie strictly between 0 and 1")
        if not 1 <= context_width <= MAX_CONTEXT_WIDTH:
            raise ValueError(f"the context is 1 to {MAX_CONTEXT_WIDTH} tokens")
        self.vocab_size = vocab_size
        self.context_width = context_width
        self.size = int(gamma * vocab_size)  # green ids per context
        if not 0 < self.size < vocab_size:
            raise ValueError("gamma leaves no green or no red ids in this vocabulary")
        self.gamma = self.size / vocab_size  # exact, for the z-score
        self._token_values = _stream(key, "context", vocab_size)
        orders = np.stack(
            [
                np.argsort(_stream(key, f"order/{j}", vocab_size), kind="stable")
                for j in range(PERMUTATIONS)
            ]
        ).astype(np.intp)
        # Each order followed by its own start, so any window of ``size`` is one plain slice.
        self._windows = np.concatenate([orders, orders[:, : self.size]], axis=1)
        self._ranks = np.empty_like(orders)
        rows = np.arange(PERMUTATIONS)[:, None]
        self._ranks[rows, orders] = np.arange(vocab_size)
        for array in (self._token_values, self._windows, self._ranks):
            array.flags.writeable = False

    def seeds(self, contexts: npt.NDArray[np.integer]) -> npt.NDArray[np.uint64]:
        """One seed per row of ``contexts`` (shape ``(n, context_width)``, oldest token first)."""
        values = self._token_values[contexts]
        x = values[:, -1].copy()
        for back in range(1, self.context_width):
            # Rotated so that the same tokens in another order make another seed.
            v = values[:, -1 - back]
            r = _U64(7 * back % 64)
            x ^= (v << r) | (v >> (_U64(64) - r))
        return _mix(x)

    def _order_and_offset(
        self, seeds: npt.NDArray[np.uint64]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        order = (seeds % _U64(PERMUTATIONS)).astype(np.intp)
        offset = ((seeds >> _U64(32)) % _U64(self.vocab_size)).astype(np.intp)
        return order, offset

    def green_ids(self, context: Sequence[int] | npt.NDArray[np.integer]) -> npt.NDArray[np.intp]:
        """The green ids after ``context`` (its last ``context_width`` tokens): a read-only
        view, in no particular order."""
        window = np.asarray(context[-self.context_width :], dtype=np.intp)
        if len(window) < self.context_width:
            raise ValueError(f"the context needs {self.context_width} tokens")
        order, offset = self._order_and_offset(self.seeds(window[None, :]))
        start = int(offset[0])
        return self._windows[int(order[0]), start : start + self.size]

    def is_green(
        self, contexts: npt.NDArray[np.integer], tokens: npt.NDArray[np.integer]
    ) -> npt.NDArray[np.bool_]:
        """Whether each ``tokens[i]`` is green after ``contexts[i]``."""
        order, offset = self._order_and_offset(self.seeds(contexts))
        ranks = self._ranks[order, np.asarray(tokens, dtype=np.intp)]
        result: npt.NDArray[np.bool_] = (ranks - offset) % self.vocab_size < self.size
        return result
