"""Texts to embeddings through any engine that makes them (the embedded engine, or an upstream's
/v1/embeddings), for retrieval."""

from __future__ import annotations

import numpy as np

from ..engines.base import Engine
from ..types import EmbeddingRequest
from .retrieval import Embed


def embedder_of(engine: Engine) -> Embed:
    async def embed(texts: list[str]) -> np.ndarray:
        result = await engine.embed(EmbeddingRequest(texts))
        ordered = sorted(result.data, key=lambda d: int(d["index"]))
        vectors = np.asarray([d["embedding"] for d in ordered], dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)  # upstreams need not normalise

    return embed
