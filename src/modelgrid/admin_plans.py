"""Plans and prices through ``/admin/v1/plans/{name}`` and ``/admin/v1/prices/{model}``
(the operator's admin keys only). Stored over the config's and applied on every replica
within seconds (see ``overrides``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import InvalidRequest, NotFound
from .overrides import Overrides, check_plan
from .routes import JSON, gateway_of, read_json, trace_of
from .schemas import parse
from .settings import PlanSettings, PriceSettings, Settings


def overrides_of(request: Request) -> Overrides:
    found: Overrides = request.app.state.overrides
    return found


def _settings(request: Request) -> Settings:
    found: Settings = request.app.state.settings
    return found


async def _operator(request: Request, route: str) -> None:
    gateway = gateway_of(request)
    await gateway.auth.authenticate_admin(
        request.headers.get("authorization"), trace_of(request, route)
    )


async def _body(request: Request, model: type[PlanSettings] | type[PriceSettings]) -> Any:
    return parse(model, await read_json(request))


async def put_plan(request: Request) -> Response:
    await _operator(request, "/admin/v1/plans/{name}")
    name = request.path_params["name"]
    plan: PlanSettings = await _body(request, PlanSettings)
    if (problem := check_plan(plan, _settings(request))) is not None:
        raise InvalidRequest(f"Invalid plan: {problem}.", param="degrade_to")
    overrides = overrides_of(request)
    await overrides.store.put("plan", name, plan.model_dump())
    await overrides.refresh()
    return JSON({"name": name, **plan.model_dump()})


async def delete_plan(request: Request) -> Response:
    """Drop a plan set through the API: a built-in or configured one of that name returns;
    organisations on a plan that no longer exists count against the default plan."""
    await _operator(request, "/admin/v1/plans/{name}")
    name = request.path_params["name"]
    settings = _settings(request)
    if name == settings.default_plan and name not in settings.all_plans:
        raise InvalidRequest("The default plan cannot be deleted.", param="name")
    overrides = overrides_of(request)
    if not await overrides.store.delete("plan", name):
        raise NotFound(f"No plan '{name}' was set through the API.", param="name")
    await overrides.refresh()
    return JSON({"name": name, "deleted": True})


async def list_prices(request: Request) -> Response:
    await _operator(request, "/admin/v1/prices")
    prices = gateway_of(request).meter.prices
    data = [
        {
            "model": model,
            "input": p.input / 1e6,
            "cached_input": p.cached_input / 1e6,
            "output": p.output / 1e6,
            "off_peak_discount": p.off_peak_discount_bp / 10_000,
        }
        for model, p in sorted(prices.items())
    ]
    return JSON({"object": "list", "data": data})


async def put_prices(request: Request) -> Response:
    await _operator(request, "/admin/v1/prices/{model}")
    model = request.path_params["model"]
    if model not in _settings(request).models:
        raise NotFound(f"The model '{model}' does not exist.", param="model")
    prices: PriceSettings = await _body(request, PriceSettings)
    overrides = overrides_of(request)
    await overrides.store.put("price", model, prices.model_dump())
    await overrides.refresh()
    return JSON({"model": model, **prices.model_dump()})


async def delete_prices(request: Request) -> Response:
    await _operator(request, "/admin/v1/prices/{model}")
    model = request.path_params["model"]
    overrides = overrides_of(request)
    if not await overrides.store.delete("price", model):
        raise NotFound(f"No prices for '{model}' were set through the API.", param="model")
    await overrides.refresh()
    return JSON({"model": model, "deleted": True})


routes = [
    Route("/admin/v1/plans/{name}", put_plan, methods=["PUT"]),
    Route("/admin/v1/plans/{name}", delete_plan, methods=["DELETE"]),
    Route("/admin/v1/prices", list_prices, methods=["GET"]),
    Route("/admin/v1/prices/{model:path}", put_prices, methods=["PUT"]),
    Route("/admin/v1/prices/{model:path}", delete_prices, methods=["DELETE"]),
]
