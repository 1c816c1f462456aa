"""The engine interface every model backend implements.

Generation is split in two so the gateway can refuse early and account exactly: ``prepare``
counts the prompt and checks it fits (cheap, no queueing), ``generate`` waits for a slot and
streams ``Piece``s. Closing the ``generate`` iterator (a client went away) stops the generation
and frees its slot.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from ..errors import InvalidRequest
from ..types import EmbeddingRequest, EmbeddingResult, GenerationRequest, Piece, Prepared


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
    def generate(self, prepared: Prepared, tenant: str) -> AsyncGenerator[Piece, None]:
        """Stream the generation; the last piece carries ``finish_reason``."""

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        raise InvalidRequest(f"'{self.name}' does not serve embeddings.", param="model")

    @abc.abstractmethod
    def count_tokens(self, text: str) -> int: ...

    @abc.abstractmethod
    def stats(self) -> EngineStats: ...
