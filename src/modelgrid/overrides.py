"""Plans, prices and layers set through the admin API, applied on every replica.

Each replica reads the stored overrides at start-up and every ``interval`` seconds, and the
replica that took a change applies it at once. An override that no longer fits the config
(a plan naming a model since removed, say) is skipped with a warning, never half-applied.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError

from .admission import Admission
from .catalogue import Catalogue
from .layer_settings import LayerSettings
from .layers import Layer, combined, layer_prices
from .metering import Meter
from .pricing import Price, configured_prices
from .settings import PlanSettings, PriceSettings, Settings
from .storage.overrides import OverrideStore

log = logging.getLogger("modelgrid.overrides")


def check_plan(plan: PlanSettings, settings: Settings) -> str | None:
    """What is wrong with a plan against the configured models; None when nothing."""
    if plan.degrade_to and plan.degrade_to not in settings.models:
        return f"degrade_to: no model {plan.degrade_to!r}"
    return None


class Overrides:
    def __init__(
        self,
        store: OverrideStore,
        admission: Admission,
        meter: Meter,
        settings: Settings,
        interval: float = 5.0,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.store = store
        self._catalogue = catalogue
        self._admission = admission
        self._meter = meter
        self._settings = settings
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._poll())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.refresh()
            except Exception:  # the database away for a while: keep what is applied
                log.exception("overrides: refresh failed")

    async def refresh(self) -> None:
        plans = dict(self._settings.all_plans)
        for name, body in (await self.store.all("plan")).items():
            try:
                plan = PlanSettings.model_validate(body)
            except ValidationError as exc:
                log.warning("overrides: plan %s skipped: %s", name, exc.errors()[0]["msg"])
                continue
            if (problem := check_plan(plan, self._settings)) is not None:
                log.warning("overrides: plan %s skipped: %s", name, problem)
                continue
            plans[name] = plan
        layers = await self.layers()
        prices, own = configured_prices(self._settings)
        own |= {
            layer.id: Price.from_settings(layer.settings.prices)
            for layer in layers.values()
            if layer.settings.prices is not None and layer.id not in self._settings.layers
        }
        for model, body in (await self.store.all("price")).items():
            if model not in prices and model not in layers:
                continue  # a model no longer served
            try:
                price = Price.from_settings(PriceSettings.model_validate(body))
            except ValidationError as exc:
                log.warning("overrides: prices of %s skipped: %s", model, exc.errors()[0]["msg"])
                continue
            (prices if model in prices else own)[model] = price
        prices |= layer_prices(prices, layers, own)
        # Whole dictionaries swapped in one step: a request sees the old set or the new one.
        self._admission.plans = plans
        self._meter.prices = prices
        if self._catalogue is not None:
            self._catalogue.set_layers(layers)

    async def layers(self) -> dict[str, Layer]:
        """The config's layers with those stored through the API; a stored one that no longer
        fits (its parent gone, a policy or plan it names removed) is left out, with a warning."""
        stored: dict[str, LayerSettings] = {}
        known_policies = self._settings.review.all_policies
        plans = self._settings.all_plans
        for layer_id, body in (await self.store.all("layer")).items():
            try:
                layer = LayerSettings.model_validate(body)
            except ValidationError as exc:
                log.warning("overrides: layer %s skipped: %s", layer_id, exc.errors()[0]["msg"])
                continue
            if layer.review_policy and layer.review_policy not in known_policies:
                log.warning("overrides: layer %s skipped: no review policy", layer_id)
                continue
            if any(p not in plans for p in layer.plans):
                log.warning("overrides: layer %s skipped: a plan it names is gone", layer_id)
                continue
            stored[layer_id] = layer
        built, skipped = combined(self._settings.models, self._settings.layers, stored)
        for layer_id, why in skipped.items():
            log.warning("overrides: layer %s skipped: %s", layer_id, why)
        return built
