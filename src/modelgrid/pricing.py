"""What a request costs: pure arithmetic on integer micro-credits.

Money never touches a float after configuration is read: prices become micro-credits per
million tokens, multipliers and discounts basis points, and every charge is rounded up once,
per request, so that a charge computed on a request's most tokens (its reservation) is never
less than the charge on what it used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from .settings import DeploymentSettings, PriceSettings, Settings

MICRO = 1_000_000  # micro-credits per credit
_PER = 1_000_000  # prices are per million tokens
_BP = 10_000  # basis points in one


def micro(credits: float) -> int:
    """Credits (as configured or typed by an operator) in micro-credits."""
    return round(credits * MICRO)


def credits(amount: int) -> float:
    """Micro-credits as credits, for display."""
    return amount / MICRO


def _bp(share: float) -> int:
    return round(share * _BP)


@dataclass(frozen=True, slots=True)
class Price:
    """A model's prices in micro-credits per million tokens."""

    input: int = 0
    cached_input: int = 0
    output: int = 0
    off_peak_discount_bp: int = 0

    @classmethod
    def from_settings(cls, s: PriceSettings) -> Price:
        cached = s.input if s.cached_input is None else s.cached_input
        return cls(micro(s.input), micro(cached), micro(s.output), _bp(s.off_peak_discount))

    @property
    def free(self) -> bool:
        return not (self.input or self.cached_input or self.output)


FREE = Price()


def _units(price: Price, tokens_in: int, tokens_cached: int, tokens_out: int) -> int:
    cached = min(tokens_cached, tokens_in)
    return (
        (tokens_in - cached) * price.input + cached * price.cached_input + tokens_out * price.output
    )


def list_price(price: Price, tokens_in: int, tokens_cached: int, tokens_out: int) -> int:
    """Micro-credits at list prices: no multiplier, no discount, rounded up."""
    return -(-_units(price, tokens_in, tokens_cached, tokens_out) // _PER)


def charge(
    price: Price,
    tokens_in: int,
    tokens_cached: int,
    tokens_out: int,
    multiplier: float = 1.0,
    off_peak: bool = False,
) -> int:
    """Micro-credits charged: list price times the plan's multiplier, less the off-peak
    discount when it applies, rounded up."""
    factor = _bp(multiplier) * (_BP - (price.off_peak_discount_bp if off_peak else 0))
    return -(-_units(price, tokens_in, tokens_cached, tokens_out) * factor // (_PER * _BP * _BP))


@dataclass(frozen=True, slots=True)
class Cost:
    """What a deployment costs the operator: micro-credits per hour of its time, and per
    million tokens in and out."""

    per_hour: int = 0
    input: int = 0
    output: int = 0

    @classmethod
    def from_settings(cls, s: DeploymentSettings) -> Cost:
        return cls(micro(s.cost_per_hour), micro(s.cost_input), micro(s.cost_output))


def cost(c: Cost, tokens_in: int, tokens_out: int, seconds: float, sharing: int) -> int:
    """A request's cost in micro-credits: its tokens at the deployment's token prices, plus
    its share of the deployment's time (``seconds`` divided among the ``sharing`` requests it
    ran alongside, itself included), rounded up."""
    tokens = -(-(tokens_in * c.input + tokens_out * c.output) // _PER)
    return tokens + math.ceil(c.per_hour * seconds / 3600 / max(1, sharing))


@dataclass(frozen=True, slots=True)
class OffPeak:
    """A daily UTC window, which may wrap midnight (DeepSeek's: 16:30 to 00:30)."""

    start_minute: int
    end_minute: int

    @classmethod
    def parse(cls, start: str, end: str) -> OffPeak | None:
        if not start or not end:
            return None
        return cls(_minute(start), _minute(end))

    def contains(self, when: datetime) -> bool:
        minute = when.hour * 60 + when.minute
        if self.start_minute <= self.end_minute:
            return self.start_minute <= minute < self.end_minute
        return minute >= self.start_minute or minute < self.end_minute


def _minute(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def configured_prices(settings: Settings) -> tuple[dict[str, Price], dict[str, Price]]:
    """The config's prices: the models', and the layers' that set their own (by layer id; a
    layer without prices takes its parent's, see ``layers.layer_prices``)."""
    models = {m: Price.from_settings(s.prices) for m, s in settings.models.items()}
    layers = {
        layer_id: Price.from_settings(layer.prices)
        for layer_id, layer in settings.layers.items()
        if layer.prices is not None
    }
    return models, layers
