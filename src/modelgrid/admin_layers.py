"""Layers through ``/admin/v1/layers``: the operator's for anyone, and an organisation's own
enterprise layers, which its admins make on the models and layers it may see. Stored over the
config's and applied on every replica within seconds (see ``overrides``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .admin_plans import overrides_of
from .catalogue import model_not_found
from .errors import Conflict, InvalidRequest, PermissionDenied
from .layer_settings import LayerSettings
from .layers import Layer, LayerError, build_layers, parent_of
from .routes import JSON, gateway_of, read_json, trace_of
from .schemas import parse
from .settings import Settings
from .storage.keys import KeyRecord

_ROUTE = "/admin/v1/layers/{layer}"


def _settings(request: Request) -> Settings:
    found: Settings = request.app.state.settings
    return found


async def admin_caller(request: Request, route: str) -> KeyRecord:
    gateway = gateway_of(request)
    return await gateway.auth.authenticate_admin(
        request.headers.get("authorization"), trace_of(request, route), org_admin_too=True
    )


def sees(caller: KeyRecord, layer: Layer) -> bool:
    """The operator sees every layer; an organisation's admin its own and the public ones."""
    if caller.role == "admin":
        return True
    return layer.settings.visibility != "org" or layer.settings.org in (caller.org_id, caller.org)


def _owns(caller: KeyRecord, layer: Layer) -> bool:
    """Whether the caller may change or remove the layer: the operator any; an organisation's
    admin only its organisation's own (a public layer it sees is not its to change)."""
    if caller.role == "admin":
        return True
    return layer.settings.visibility == "org" and layer.settings.org in (caller.org_id, caller.org)


def _card(layer: Layer, settings: Settings) -> dict[str, Any]:
    source = "config" if layer.id in settings.layers else "api"
    return {"id": layer.id, "root": layer.root, "source": source, **layer.settings.model_dump()}


async def list_layers(request: Request) -> Response:
    caller = await admin_caller(request, "/admin/v1/layers")
    settings = _settings(request)
    layers = await overrides_of(request).layers()
    data = [_card(layer, settings) for layer in layers.values() if sees(caller, layer)]
    return JSON({"object": "list", "data": data})


async def put_layer(request: Request) -> Response:
    caller = await admin_caller(request, _ROUTE)
    layer_id = request.path_params["layer"]
    raw = await read_json(request)
    if caller.role != "admin" and isinstance(raw, dict):
        # An organisation's admin's layer is its organisation's unless the body says else.
        raw = {"visibility": "org", **raw}
        if raw.get("visibility") == "org" and not raw.get("org"):
            raw["org"] = caller.org_id
    layer: LayerSettings = parse(LayerSettings, raw)
    settings = _settings(request)
    if layer_id in settings.layers or layer_id in settings.models:
        raise Conflict(f"'{layer_id}' is defined in the config; change it there.", param="layer")
    if caller.role != "admin":
        # An organisation's admin makes its own enterprise layers, seen by it alone.
        if layer.visibility != "org" or layer.org not in ("", caller.org_id, caller.org):
            raise InvalidRequest(
                'An organisation\'s layers are its own: visibility must be "org".',
                param="visibility",
            )
        if layer.adapter or layer.prices is not None:
            # An adapter names a file on the server or an upstream's model, and prices are
            # what the operator charges: the operator's to set, never a tenant's.
            raise PermissionDenied("Only the operator sets a layer's adapter and prices.")
        layer = layer.model_copy(update={"org": caller.org_id})
    if layer.review_policy and layer.review_policy not in settings.review.all_policies:
        raise InvalidRequest(f"No review policy '{layer.review_policy}'.", param="review_policy")
    if unknown := [p for p in layer.plans if p not in settings.all_plans]:
        raise InvalidRequest(f"No plan '{unknown[0]}'.", param="plans")
    overrides = overrides_of(request)
    current = await overrides.layers()
    try:
        parent = parent_of(layer_id, layer)
    except LayerError as exc:
        raise InvalidRequest(str(exc), param="parent") from None
    if parent in current and not sees(caller, current[parent]):
        raise model_not_found(parent)  # another organisation's layer: as if absent
    others = {k: v.settings for k, v in current.items() if k != layer_id}
    try:
        built = build_layers(settings.models, {**others, layer_id: layer})[layer_id]
    except LayerError as exc:
        raise InvalidRequest(str(exc).replace(f"layers.{layer_id}: ", ""), param="parent") from None
    if layer_id in current and not _owns(caller, current[layer_id]):
        if sees(caller, current[layer_id]):
            raise PermissionDenied(f"'{layer_id}' is not your organisation's to change.")
        raise model_not_found(layer_id)
    await overrides.store.put("layer", layer_id, layer.model_dump(exclude_defaults=True))
    await overrides.refresh()
    return JSON(_card(built, settings))


async def delete_layer(request: Request) -> Response:
    caller = await admin_caller(request, _ROUTE)
    layer_id = request.path_params["layer"]
    overrides = overrides_of(request)
    current = await overrides.layers()
    found = current.get(layer_id)
    if found is None or not sees(caller, found):
        raise model_not_found(layer_id)
    if not _owns(caller, found):
        raise PermissionDenied(f"'{layer_id}' is not your organisation's to remove.")
    if layer_id in _settings(request).layers:
        raise Conflict(f"'{layer_id}' is defined in the config; remove it there.", param="layer")
    children = [c.id for c in current.values() if c.chain[:-1] and c.chain[-2] == layer_id]
    if children:
        raise Conflict(f"Layers are built on '{layer_id}': {', '.join(children)}.", param="layer")
    await overrides.store.delete("layer", layer_id)
    await overrides.refresh()
    return JSON({"id": layer_id, "deleted": True})


routes = [
    Route("/admin/v1/layers", list_layers, methods=["GET"]),
    Route("/admin/v1/layers/{layer:path}", put_layer, methods=["PUT"]),
    Route("/admin/v1/layers/{layer:path}", delete_layer, methods=["DELETE"]),
]
