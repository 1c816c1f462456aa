"""Plans and prices set through the admin API, applied on every replica.

Each replica reads the stored overrides at start-up and every ``interval`` seconds, and the
replica that took a change applies it at once. An override that no longer fits the config
(a plan naming a model since removed, say) is skipped with a warning, never half-applied.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError

from .admission import Admission
from .layers import build_layers, layer_prices
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
    ) -> None:
        self.store = store
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
        prices, own = configured_prices(self._settings)
        for model, body in (await self.store.all("price")).items():
            if model not in prices and model not in self._settings.layers:
                continue  # a model no longer served
            try:
                price = Price.from_settings(PriceSettings.model_validate(body))
            except ValidationError as exc:
                log.warning("overrides: prices of %s skipped: %s", model, exc.errors()[0]["msg"])
                continue
            (prices if model in prices else own)[model] = price
        prices |= layer_prices(
            prices, build_layers(self._settings.models, self._settings.layers), own
        )
        # Whole dictionaries swapped in one step: a request sees the old set or the new one.
        self._admission.plans = plans
        self._meter.prices = prices
