"""``modelgrid plans`` and ``modelgrid prices``: plans and prices stored over the
config's, on the database directly; running servers apply them within seconds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
import orjson
from pydantic import ValidationError

from .cli_options import _settings, config_option
from .overrides import check_plan
from .pricing import Price
from .settings import PlanSettings, PriceSettings, Settings
from .storage.database import Database
from .storage.overrides import OverrideStore

T = TypeVar("T")


def _run(config: str | None, action: Callable[[OverrideStore, Settings], Awaitable[T]]) -> T:
    settings = _settings(config)

    async def run() -> T:
        db = Database(settings.resolved_database_url)
        try:
            await db.migrate()
            return await action(OverrideStore(db), settings)
        finally:
            await db.close()

    return asyncio.run(run())


def _validated(model: type[PlanSettings] | type[PriceSettings], body: dict[str, Any]) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise click.ClickException(f"{where}: {err['msg']}") from None


def stored_plans(config: str | None) -> dict[str, PlanSettings]:
    """The plans set with `plans set` that still validate."""

    async def action(store: OverrideStore, settings: Settings) -> dict[str, PlanSettings]:
        found = {}
        for name, body in (await store.all("plan")).items():
            try:
                found[name] = PlanSettings.model_validate(body)
            except ValidationError:
                continue  # the server skips it too, with a warning
        return found

    return _run(config, action)


@click.group()
def plans() -> None:
    """Plans: the built-in free, pro and enterprise, and the operator's own."""


@plans.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per plan.")
def plans_list(config: str | None, as_json: bool) -> None:
    """List plans with the models they allow and their rate limit (with those set by
    `modelgrid plans set` over the config's)."""
    settings = _settings(config)
    found = settings.all_plans | stored_plans(config)
    if as_json:
        rows = {name: plan.model_dump() for name, plan in found.items()}
        click.echo(orjson.dumps(rows).decode())
        return
    click.echo(f"{'PLAN':12}  {'REQUESTS/MIN':12}  MODELS")
    for name, plan in found.items():
        rpm = str(plan.requests_per_minute or "unlimited")
        default = " (default)" if name == settings.default_plan else ""
        click.echo(f"{name + default:12}  {rpm:12}  {', '.join(plan.models)}")


@plans.command("set")
@config_option
@click.argument("name")
@click.argument("body")
def plans_set(config: str | None, name: str, body: str) -> None:
    """Create or replace plan NAME from a JSON object of its settings, e.g.
    '{"daily_tokens": 100000, "requests_per_minute": 30}' (unset keys take their defaults)."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise click.ClickException("BODY must be a JSON object") from None
    if not isinstance(raw, dict):
        raise click.ClickException("BODY must be a JSON object")
    plan: PlanSettings = _validated(PlanSettings, raw)

    async def action(store: OverrideStore, settings: Settings) -> None:
        if (problem := check_plan(plan, settings)) is not None:
            raise click.ClickException(problem)
        await store.put("plan", name, plan.model_dump())

    _run(config, action)
    click.echo(f"Plan {name} stored; servers apply it within seconds.", err=True)


@plans.command("delete")
@config_option
@click.argument("name")
def plans_delete(config: str | None, name: str) -> None:
    """Drop plan NAME as set by `plans set` (a built-in or configured plan of that name returns)."""

    async def action(store: OverrideStore, settings: Settings) -> bool:
        return await store.delete("plan", name)

    if not _run(config, action):
        raise click.ClickException(f"no plan {name!r} was set with `modelgrid plans set`")
    click.echo(f"Plan {name} deleted.", err=True)


@click.group()
def prices() -> None:
    """Model prices per million tokens: the config's, or as set here."""


@prices.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def prices_list(config: str | None, as_json: bool) -> None:
    """Each model's prices in credits per million tokens, and its off-peak discount."""

    async def action(store: OverrideStore, settings: Settings) -> dict[str, PriceSettings]:
        found = {model: s.prices for model, s in settings.models.items()}
        for model, body in (await store.all("price")).items():
            if model in found:
                found[model] = PriceSettings.model_validate(body)
        return found

    found = _run(config, action)
    if as_json:
        click.echo(orjson.dumps({m: p.model_dump() for m, p in found.items()}).decode())
        return
    click.echo(f"{'MODEL':32}  {'INPUT':>8}  {'CACHED':>8}  {'OUTPUT':>8}  OFF-PEAK")
    for model, p in found.items():
        cached = Price.from_settings(p).cached_input / 1e6
        click.echo(
            f"{model:32}  {p.input:>8g}  {cached:>8g}  {p.output:>8g}  {p.off_peak_discount:.0%}"
        )


@prices.command("set")
@config_option
@click.argument("model")
@click.option("--input", "input_", type=float, default=0.0, help="Per million prompt tokens.")
@click.option("--cached-input", type=float, help="Per million cached prompt tokens.")
@click.option("--output", type=float, default=0.0, help="Per million completion tokens.")
@click.option("--off-peak-discount", type=float, default=0.0, help="0.5: half price off-peak.")
def prices_set(
    config: str | None,
    model: str,
    input_: float,
    cached_input: float | None,
    output: float,
    off_peak_discount: float,
) -> None:
    """Set MODEL's prices in credits per million tokens."""
    body = {"input": input_, "cached_input": cached_input, "output": output}
    price: PriceSettings = _validated(
        PriceSettings, body | {"off_peak_discount": off_peak_discount}
    )

    async def action(store: OverrideStore, settings: Settings) -> None:
        if model not in settings.models:
            raise click.ClickException(f"no model {model!r}")
        await store.put("price", model, price.model_dump())

    _run(config, action)
    click.echo(f"Prices of {model} stored; servers apply them within seconds.", err=True)
