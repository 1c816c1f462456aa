"""Turning a model's tokens into text and log-probabilities, independent of any one engine."""

from __future__ import annotations

import codecs
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from .types import TokenLogprob, TopLogprob


class Utf8Stream:
    """Bytes per token in, whole characters out: a character split over tokens waits for its end."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, data: bytes) -> str:
        return self._decoder.decode(data)

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)


def token_logprob(
    logits: npt.NDArray[np.float32],
    token: int,
    top: int,
    piece: Callable[[int], bytes],
) -> TokenLogprob:
    """The chosen token's log-probability and the ``top`` most likely alternatives."""
    shifted = logits.astype(np.float64) - float(logits.max())
    log_z = float(np.log(np.exp(shifted).sum()))
    chosen = piece(token)
    alternatives: list[TopLogprob] = []
    if top > 0:
        best = np.argpartition(-shifted, top)[:top]
        for idx in best[np.argsort(-shifted[best])]:
            data = piece(int(idx))
            alternatives.append(
                TopLogprob(
                    token=data.decode("utf-8", errors="replace"),
                    logprob=float(shifted[idx]) - log_z,
                    bytes=list(data),
                )
            )
    return TokenLogprob(
        token=chosen.decode("utf-8", errors="replace"),
        logprob=float(shifted[token]) - log_z,
        bytes=list(chosen),
        top=alternatives,
    )
