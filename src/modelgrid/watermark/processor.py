"""The watermark as llama-cpp-python applies it: a logits processor."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .greenlist import GreenList


class WatermarkProcessor:
    """Adds ``delta`` to the logits of the ids green after the tokens so far, for
    ``Llama.generate(..., logits_processor=LogitsProcessorList([processor]))``.

    It changes ``scores`` in place and returns it, as llama-cpp-python expects. Being a pure
    function of the tokens so far, it keeps seeded generation reproducible."""

    def __init__(self, green: GreenList, delta: float) -> None:
        self.green = green
        self.delta = np.float32(delta)

    def __call__(
        self, input_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]
    ) -> npt.NDArray[np.single]:
        if len(input_ids) >= self.green.context_width:  # else no context to seed a list
            scores[self.green.green_ids(input_ids)] += self.delta
        return scores
