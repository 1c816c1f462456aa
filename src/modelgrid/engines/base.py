"""The engine interface every model backend implements.

Generation is split in two so the gateway can refuse early and account exactly: ``prepare``
counts the prompt and checks it fits (cheap, no queueing), ``generate`` waits for a slot and
streams ``Piece``s. Closing the ``generate`` iterator (a client went away) stops the generation
and frees its slot.
"""

from __future__ import annotations

import abc
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass

from ..errors import InvalidRequest
from ..types import (
    EmbeddingRequest,
    EmbeddingResult,
    GenerationRequest,
    Piece,
    Prepared,
    Tenant,
    merge,
)


@dataclass(frozen=True, slots=True)
class EngineStats:
    waiting: int
    busy: int
    slots: int


class Engine(abc.ABC):
    name: str  # the deployment's name, unique across the server
    created: int
    context_length: int  # 0 when unknown (an upstream that does not say)

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def prepare(self, request: GenerationRequest) -> Prepared:
        """Count and check the prompt; raise an ``APIError`` the caller should see."""

    @abc.abstractmethod
    def generate(self, prepared: Prepared, tenant: Tenant) -> AsyncGenerator[Piece, None]:
        """Stream the generation; the last piece carries ``finish_reason``."""

    async def complete(self, prepared: Prepared, tenant: Tenant) -> Piece:
        """The whole generation as one piece, for a non-streamed answer. Engines that can
        answer in one call override this; by default it gathers ``generate``."""
        gathered: list[Piece] = []
        first_token_at = None
        async with aclosing(self.generate(prepared, tenant)) as pieces:
            async for piece in pieces:
                if first_token_at is None and piece.tokens:
                    first_token_at = time.perf_counter()
                gathered.append(piece)
        return merge(gathered, first_token_at)

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        raise InvalidRequest(f"'{self.name}' does not serve embeddings.", param="model")

    @abc.abstractmethod
    def count_tokens(self, text: str) -> int: ...

    @abc.abstractmethod
    def stats(self) -> EngineStats: ...
