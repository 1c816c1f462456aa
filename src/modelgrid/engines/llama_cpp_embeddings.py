"""Embeddings from the embedded engine's model: a second llama.cpp context of the same GGUF
file, made for embedding (mean pooling over the last hidden states, normalised to length 1),
loaded on first use so that a server that never embeds never pays for it."""

from __future__ import annotations

import asyncio
import base64
import threading
from pathlib import Path
from typing import Any

import numpy as np
from llama_cpp import LLAMA_POOLING_TYPE_MEAN, Llama

from ..errors import ContextLengthExceeded, InvalidRequest
from ..types import EmbeddingRequest, EmbeddingResult

MAX_INPUTS = 2048  # OpenAI's limit on inputs per request


class Embedder:
    def __init__(self, name: str, path: Path, n_ctx: int, n_threads: int | None) -> None:
        self.name = name
        self._path, self._n_ctx, self._n_threads = path, n_ctx, n_threads
        self._model: Llama | None = None
        self._loading = asyncio.Lock()
        self._running = threading.Lock()  # one llama.cpp context: one call at a time

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        texts = await self._texts(request)
        if request.dimensions is not None:
            raise InvalidRequest(
                f"'{self.name}' makes embeddings of one size; leave out 'dimensions'.",
                param="dimensions",
            )
        vectors, tokens = await self.vectors(texts)
        data: list[dict[str, Any]] = []
        for index, vector in enumerate(vectors):
            value: Any = (
                base64.b64encode(vector.astype("<f4").tobytes()).decode()
                if request.encoding_format == "base64"
                else vector.tolist()
            )
            data.append({"object": "embedding", "index": index, "embedding": value})
        return EmbeddingResult(data, tokens)

    async def vectors(self, texts: list[str]) -> tuple[np.ndarray, int]:
        """Each text's embedding (rows of length 1) and the tokens they took."""
        model = await self._loaded()
        return await asyncio.to_thread(self._run, model, texts)

    async def _texts(self, request: EmbeddingRequest) -> list[str]:
        raw = request.input
        items: list[Any] = [raw] if isinstance(raw, str) else list(raw)
        if items and all(isinstance(i, int) for i in items):
            items = [items]  # one prompt of token ids
        if not items or len(items) > MAX_INPUTS:
            raise InvalidRequest(f"'input' must hold 1 to {MAX_INPUTS} items.", param="input")
        model = await self._loaded()
        return [
            i if isinstance(i, str) else model.detokenize(list(i)).decode("utf-8", "replace")
            for i in items
        ]

    def _run(self, model: Llama, texts: list[str]) -> tuple[np.ndarray, int]:
        with self._running:
            counts = [len(model.tokenize(t.encode("utf-8"), add_bos=True)) for t in texts]
            if max(counts) > self._n_ctx:
                raise ContextLengthExceeded(
                    f"An input of {max(counts)} tokens is longer than this model's context "
                    f"({self._n_ctx} tokens).",
                    param="input",
                )
            found = model.embed(texts, normalize=True)
        return np.asarray(found, dtype=np.float32).reshape(len(texts), -1), sum(counts)

    async def _loaded(self) -> Llama:
        async with self._loading:
            if self._model is None:
                self._model = await asyncio.to_thread(
                    Llama,
                    str(self._path),
                    embedding=True,
                    pooling_type=LLAMA_POOLING_TYPE_MEAN,
                    n_ctx=self._n_ctx,
                    n_batch=self._n_ctx,
                    n_ubatch=self._n_ctx,
                    n_threads=self._n_threads,
                    verbose=False,
                )
            return self._model

    def close(self) -> None:
        if self._model is not None:
            self._model.close()
            self._model = None
