"""The models this server offers, each with its engine and its defaults."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .engines.base import Engine
from .engines.llama_cpp import LlamaCppEngine
from .errors import ModelNotFound
from .settings import ModelSettings, Settings


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    engine: Engine
    settings: ModelSettings

    def card(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "model",
            "created": self.engine.created,
            "owned_by": self.engine.owned_by,
            "context_length": self.engine.context_length,
        }


class Catalogue:
    def __init__(self, entries: list[Entry]) -> None:
        self._entries = {entry.id: entry for entry in entries}

    @classmethod
    def from_settings(cls, settings: Settings) -> Catalogue:
        return cls(
            [
                Entry(model_id, LlamaCppEngine(model_id, model), model)
                for model_id, model in settings.models.items()
            ]
        )

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def resolve(self, model_id: str) -> Entry:
        entry = self._entries.get(model_id)
        if entry is None:
            raise ModelNotFound(
                f"The model '{model_id}' does not exist or you do not have access to it.",
                param="model",
            )
        return entry

    async def start(self) -> None:
        for entry in self._entries.values():
            await entry.engine.start()

    async def close(self) -> None:
        for entry in self._entries.values():
            await entry.engine.close()
