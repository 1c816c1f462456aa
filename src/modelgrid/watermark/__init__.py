"""A keyed green-list watermark for generated tokens, after Kirchenbauer et al. 2023 ("A
Watermark for Large Language Models"), and its detector.

While generating, the logits of a pseudo-random ``gamma`` of the vocabulary, chosen by the
operator's secret key and the previous two tokens, get ``delta`` added, so the model prefers
those "green" tokens where it has a choice. Text holding many more green tokens than the
``gamma`` chance gives is the model's: the detector's z-score, z >= 4 (false positives about
3e-5), needs the key and the tokenizer, never the model.

- ``greenlist``: which ids are green after a context, and why it is fast (its docstring).
- ``processor``: the logits processor for llama-cpp-python.
- ``detect``: z-score and p-value over (context, token) pairs, each distinct pair once.
- ``keyfile``: the operator's key, created on first start in the data directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .detect import MIN_SCORED, Z_THRESHOLD, Detection, detect, p_value, z_score
from .greenlist import CONTEXT_WIDTH, GAMMA, GreenList
from .keyfile import KEY_BYTES, KEY_FILE, load_or_create_key, operator_key, parse_key, read_key
from .processor import WatermarkProcessor

DELTA = 2.0

__all__ = [
    "CONTEXT_WIDTH",
    "DELTA",
    "GAMMA",
    "KEY_BYTES",
    "KEY_FILE",
    "MIN_SCORED",
    "Z_THRESHOLD",
    "Detection",
    "GreenList",
    "Watermark",
    "WatermarkProcessor",
    "detect",
    "load_or_create_key",
    "operator_key",
    "p_value",
    "parse_key",
    "read_key",
    "z_score",
]


@dataclass(frozen=True, slots=True)
class Watermark:
    """An operator's watermark: the key and the parameters. Engines turn it into a
    ``GreenList`` for their vocabulary once, at start-up."""

    key: bytes
    gamma: float = GAMMA
    delta: float = DELTA
    context_width: int = CONTEXT_WIDTH
    threshold: float = Z_THRESHOLD

    def __repr__(self) -> str:  # never the key, in logs or tracebacks
        return (
            f"Watermark(gamma={self.gamma}, delta={self.delta}, "
            f"context_width={self.context_width}, threshold={self.threshold})"
        )

    def green_list(self, vocab_size: int) -> GreenList:
        return GreenList(self.key, vocab_size, self.gamma, self.context_width)

    def processor(self, green: GreenList) -> WatermarkProcessor:
        return WatermarkProcessor(green, self.delta)

    def detect(self, green: GreenList, tokens: Sequence[int]) -> Detection:
        return detect(green, tokens, self.threshold)
