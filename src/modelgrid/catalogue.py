"""The models this server offers: each a router over its deployments, and the layers built on
them (served by their root model's router)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from .balancing import DeploymentState
from .engines.base import Engine
from .errors import InvalidRequest, ModelNotFound
from .layers import Layer, build_layers
from .pricing import Cost
from .router import Deployment, Router, new_state
from .routing.auto import Auto
from .settings import DeploymentSettings, LlamaCppSettings, ModelSettings, Settings
from .watermark import Watermark

if TYPE_CHECKING:  # loaded only where a model runs on it
    from .engines.llama_cpp import LlamaCppEngine


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    router: Router
    settings: ModelSettings  # the root model's, for a layer
    layer: Layer | None = None
    auto: Auto | None = None  # a name a router resolves to one of two models

    @property
    def engine(self) -> Engine:
        return self.router

    @property
    def review_policies(self) -> tuple[str, ...]:
        """The model's own review policy and its layers', each applied with the plan's."""
        own = (self.settings.review_policy,) if self.settings.review_policy else ()
        return own if self.layer is None else own + self.layer.review_policies

    def card(self) -> dict[str, Any]:
        card: dict[str, Any] = {
            "id": self.id,
            "object": "model",
            "created": self.router.created,
            "owned_by": self.settings.owned_by,
        }
        if self.layer is not None:
            # vLLM's fields for a LoRA adapter: what it is built on, and the model under all.
            chain = self.layer.chain
            card["parent"] = chain[-2] if len(chain) > 1 else self.layer.root
            card["root"] = self.layer.root
            card["owned_by"] = (
                self.layer.settings.owned_by or self.layer.settings.org or (self.settings.owned_by)
            )
        if self.auto is not None:
            card["owned_by"] = "modelgrid"
            card["routes"] = [self.auto.small, self.auto.large]
            return card
        if self.router.context_length:
            card["context_length"] = self.router.context_length
        return card


class Catalogue:
    def __init__(self, entries: list[Entry], layers: dict[str, Layer] | None = None) -> None:
        self._entries = {entry.id: entry for entry in entries}
        for entry in entries:
            entry.router.fallbacks = [self._entries[f].router for f in entry.settings.fallbacks]
        self._layers: dict[str, Entry] = {}
        self._autos: dict[str, Entry] = {}
        self.set_layers(layers or {})

    def set_autos(self, autos: dict[str, Auto]) -> None:
        self._autos = {
            auto.name: Entry(auto.name, small.router, small.settings, None, auto)
            for auto in autos.values()
            if (small := self._entries.get(auto.small) or self._layers.get(auto.small))
        }

    def set_layers(self, layers: dict[str, Layer]) -> None:
        """The layers offered from now on, swapped whole: a request sees the old set or the
        new one."""
        self._layers = {
            layer.id: Entry(layer.id, root.router, root.settings, layer)
            for layer in layers.values()
            if (root := self._entries.get(layer.root)) is not None
        }

    @classmethod
    def from_settings(cls, settings: Settings, watermark: Watermark | None = None) -> Catalogue:
        """``watermark``: the operator's, for the embedded engines (which see the logits)."""
        entries = []
        for model_id, model in settings.models.items():
            deployments = [
                _deployment(model_id, i, d, len(model.deployments), watermark)
                for i, d in enumerate(model.deployments)
            ]
            entries.append(Entry(model_id, Router(model_id, model, deployments), model))
        catalogue = cls(entries, build_layers(settings.models, settings.layers))
        catalogue.set_autos({n: Auto.load(n, a) for n, a in settings.auto.items()})
        return catalogue

    def costs(self) -> dict[str, tuple[Cost, Callable[[], int]]]:
        """Each deployment's cost, and how many requests it has in flight, by its name."""
        found: dict[str, tuple[Cost, Callable[[], int]]] = {}
        for entry in self._entries.values():
            for deployment, settings in zip(
                entry.router.deployments, entry.settings.deployments, strict=True
            ):
                found[deployment.state.name] = (
                    Cost.from_settings(settings),
                    _inflight(deployment.state),
                )
        return found

    def __iter__(self) -> Iterator[Entry]:
        """The models (layers, which share their roots' routers, are in ``listed``)."""
        return iter(self._entries.values())

    def listed(self) -> list[Entry]:
        """Every model and layer, for /v1/models (each caller sees those it may)."""
        return [*self._entries.values(), *self._layers.values(), *self._autos.values()]

    def resolve(self, model_id: str) -> Entry:
        entry = (
            self._entries.get(model_id) or self._layers.get(model_id) or self._autos.get(model_id)
        )
        if entry is None:
            raise model_not_found(model_id)
        return entry

    async def start(self) -> None:
        for entry in self._entries.values():
            await entry.router.start()

    async def close(self) -> None:
        for entry in self._entries.values():
            await entry.router.close()

    def detector(self, model_id: str | None) -> LlamaCppEngine:
        """An embedded engine of ``model_id`` (else the first model that has one), whose
        tokenizer and watermark score a text."""
        entries = [self.resolve(model_id)] if model_id else list(self._entries.values())
        for entry in entries:
            for deployment in entry.router.deployments:
                if deployment.kind == "llama_cpp":
                    return cast("LlamaCppEngine", deployment.engine)
        raise InvalidRequest(
            "No embedded model can score this: watermarks are in tokens that ModelGrid's "
            "embedded engines generate.",
            param="model",
        )


def _inflight(state: DeploymentState) -> Callable[[], int]:
    return lambda: state.inflight


def _deployment(
    model_id: str,
    index: int,
    settings: DeploymentSettings,
    count: int,
    watermark: Watermark | None,
) -> Deployment:
    name = settings.name or (model_id if count == 1 else f"{model_id}/{index}")
    state = new_state(
        name, settings.weight, settings.breaker_failures, settings.breaker_cooldown_seconds
    )
    if isinstance(settings, LlamaCppSettings):
        from .engines.llama_cpp import LlamaCppEngine

        engine: Engine = LlamaCppEngine(name, settings, watermark)
        return Deployment(engine, state, "llama_cpp", settings.path or "(bundled SmolLM2)")
    from .engines.openai_http import OpenAIEngine

    return Deployment(OpenAIEngine(name, model_id, settings), state, "openai", settings.base_url)


def model_not_found(model_id: str) -> ModelNotFound:
    """Unknown and forbidden read the same: a plan's callers learn nothing of other models."""
    return ModelNotFound(
        f"The model '{model_id}' does not exist or you do not have access to it.", param="model"
    )
