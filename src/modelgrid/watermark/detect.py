"""Detection: how many tokens are green after their context, as a z-score (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .greenlist import GreenList

Z_THRESHOLD = 4.0  # one-sided: false positives about 3e-5
MIN_SCORED = 2  # below this a z-score says nothing, so none is given


@dataclass(frozen=True, slots=True)
class Detection:
    """``z_score`` and ``p_value`` are None when fewer than ``MIN_SCORED`` tokens could be
    scored (text too short, or one pair repeated); ``watermarked`` is then False."""

    z_score: float | None
    p_value: float | None
    tokens_scored: int
    green_tokens: int
    watermarked: bool
    threshold: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "z_score": self.z_score,
            "p_value": self.p_value,
            "tokens_scored": self.tokens_scored,
            "green_tokens": self.green_tokens,
            "watermarked": self.watermarked,
            "threshold": self.threshold,
        }


def z_score(green: int, scored: int, gamma: float) -> float:
    """Standard deviations above the ``gamma * scored`` green tokens chance would give."""
    return (green - gamma * scored) / math.sqrt(scored * gamma * (1 - gamma))


def p_value(z: float) -> float:
    """The one-sided tail of the standard normal beyond ``z``."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def detect(green: GreenList, tokens: Sequence[int], threshold: float = Z_THRESHOLD) -> Detection:
    """Score ``tokens`` (the text's own, no prompt) against the green lists of their contexts.

    Each distinct (context, token) pair counts once: repeated phrases would otherwise add the
    same evidence again and again, and push unwatermarked text over the threshold."""
    width = green.context_width
    ids = np.asarray(tokens, dtype=np.intp)
    if len(ids) <= width:
        return Detection(None, None, 0, 0, False, threshold)
    pairs = np.unique(sliding_window_view(ids, width + 1), axis=0)
    scored = len(pairs)
    greens = int(np.count_nonzero(green.is_green(pairs[:, :width], pairs[:, width])))
    if scored < MIN_SCORED:
        return Detection(None, None, scored, greens, False, threshold)
    z = z_score(greens, scored, green.gamma)
    return Detection(z, p_value(z), scored, greens, z >= threshold, threshold)
