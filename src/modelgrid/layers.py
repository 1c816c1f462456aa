"""Layers: models built on models, as Pangu builds enterprise models (L2) on industry models (L1)
on a base (L0). ``base/finance/acme`` is served by ``base``'s deployments, with what each layer
from ``base`` down adds: instructions, review policies, prices, an adapter, an audience.

Pure functions: a layer's effective form from its chain, whether a caller may see it, and what
it does to a generation request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .errors import InvalidRequest
from .layer_settings import LayerSettings
from .types import GenerationRequest

if TYPE_CHECKING:
    from .pricing import Price


@dataclass(frozen=True, slots=True)
class Layer:
    """A layer with its chain applied."""

    id: str
    root: str  # the model whose deployments serve it
    chain: tuple[str, ...]  # the layers from the root's first child down to this one
    system_prompt: str  # every prompt of the chain that applies, in order
    review_policies: tuple[str, ...]  # the chain's own policies (the root model's not included)
    adapter: str  # the nearest in the chain; empty: none
    settings: LayerSettings

    def visible_to(self, plan: str | None, org_id: str | None, org_name: str | None) -> bool:
        """Whether a caller on ``plan`` in organisation ``org_id`` (named ``org_name``) may
        see this layer; the operator's own keys (plan None, no organisation) see all."""
        if plan is None and org_id is None:
            return True
        s = self.settings
        if s.visibility == "plans":
            return plan in s.plans
        if s.visibility == "org":
            return s.org in (org_id, org_name)
        return True


class LayerError(ValueError):
    pass


def parent_of(layer_id: str, settings: LayerSettings) -> str:
    if settings.parent:
        return settings.parent
    head, slash, _ = layer_id.rpartition("/")
    if not slash or not head:
        raise LayerError(f"layers.{layer_id}: no parent (name it, or use a name like base/...)")
    return head


def build_layers(
    models: Mapping[str, object], layers: Mapping[str, LayerSettings]
) -> dict[str, Layer]:
    """Every layer resolved down its chain; raises ``LayerError`` for a parent that is neither
    a model nor a layer, a cycle, or a layer named like a model."""
    built: dict[str, Layer] = {}

    def build(layer_id: str, path: tuple[str, ...]) -> Layer:
        if layer_id in built:
            return built[layer_id]
        if layer_id in path:
            raise LayerError(f"layers.{layer_id}: its parents form a cycle: {' -> '.join(path)}")
        settings = layers[layer_id]
        parent = parent_of(layer_id, settings)
        if parent in models:
            inherited = Layer(parent, parent, (), "", (), "", LayerSettings())
        elif parent in layers:
            inherited = build(parent, (*path, layer_id))
        else:
            raise LayerError(f"layers.{layer_id}: parent {parent!r} is neither a model nor a layer")
        prompts = [] if settings.replace_prompt else [inherited.system_prompt]
        prompt = "\n\n".join(p for p in [*prompts, settings.system_prompt] if p)
        policies = inherited.review_policies + (
            (settings.review_policy,) if settings.review_policy else ()
        )
        layer = Layer(
            layer_id,
            inherited.root,
            (*inherited.chain, layer_id),
            prompt,
            policies,
            settings.adapter or inherited.adapter,
            settings,
        )
        built[layer_id] = layer
        return layer

    for layer_id in layers:
        if layer_id in models:
            raise LayerError(f"layers.{layer_id}: a model has that name already")
        build(layer_id, ())
    return built


def layer_prices(
    prices: Mapping[str, Price], layers: Mapping[str, Layer], own: Mapping[str, Price]
) -> dict[str, Price]:
    """Each layer's price: its own (``own``, by layer id) or else its nearest parent's, down
    to the root model's in ``prices``."""
    found: dict[str, Price] = {}
    for layer in layers.values():
        for layer_id in reversed(layer.chain):
            if layer_id in own:
                found[layer.id] = own[layer_id]
                break
        else:
            if layer.root in prices:
                found[layer.id] = prices[layer.root]
    return found


def layered(layer: Layer, request: GenerationRequest) -> GenerationRequest:
    """The request as the layer makes it: its instructions said first, its adapter asked for."""
    if layer.system_prompt:
        if request.messages is not None:
            system = {"role": "system", "content": layer.system_prompt}
            request = replace(request, messages=[system, *request.messages])
        elif isinstance(request.prompt, str):
            request = replace(request, prompt=f"{layer.system_prompt}\n\n{request.prompt}")
        else:
            raise InvalidRequest(
                f"The model '{layer.id}' needs a text prompt: its instructions cannot be put "
                "in front of token ids.",
                param="prompt",
            )
    if layer.adapter:
        request = replace(request, adapter=layer.adapter)
    return request


def combined(
    models: Mapping[str, object],
    configured: Mapping[str, LayerSettings],
    stored: Mapping[str, LayerSettings],
) -> tuple[dict[str, Layer], dict[str, str]]:
    """The config's layers and those stored through the API, resolved; and the stored ones
    left out, with why (a name the config or a model has, a parent that is gone, a cycle).
    A stored layer may be built on another stored one, in any order."""
    skipped = {k: "the config defines a model or layer of that name" for k in stored}
    skipped = {k: v for k, v in skipped.items() if k in configured or k in models}
    accepted = dict(configured)
    waiting = {k: v for k, v in stored.items() if k not in skipped}
    reasons: dict[str, str] = {}
    while waiting:
        progressed = False
        for layer_id, settings in list(waiting.items()):
            try:
                build_layers(models, {**accepted, layer_id: settings})
            except LayerError as exc:
                reasons[layer_id] = str(exc)
                continue
            accepted[layer_id] = settings
            del waiting[layer_id]
            progressed = True
        if not progressed:
            break
    skipped |= {k: reasons[k] for k in waiting}
    return build_layers(models, accepted), skipped
