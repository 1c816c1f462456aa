"""The margin report, the way DeepSeek reported its serving for one day (2025-03-01): tokens
in (cache hits and misses) and out, theoretical revenue at list prices, actual revenue after
free use and discounts, cost, and margin. Pure arithmetic over the ledger's sums."""

from __future__ import annotations

from typing import Any

from .pricing import credits
from .storage.ledger import Totals


def _margin(revenue: int, cost: int) -> float | None:
    return None if revenue == 0 else (revenue - cost) / revenue


def _line(t: Totals) -> dict[str, Any]:
    return {
        "requests": t.requests,
        "input_tokens": t.tokens_in,
        "input_tokens_cache_hit": t.tokens_cached,
        "input_tokens_cache_miss": t.tokens_in - t.tokens_cached,
        "output_tokens": t.tokens_out,
        "theoretical_revenue": credits(t.list_price),
        "actual_revenue": credits(t.charge),
        "cost": credits(t.cost),
        "theoretical_margin": _margin(t.list_price, t.cost),
        "actual_margin": _margin(t.charge, t.cost),
    }


def _saving(t: Totals) -> dict[str, Any]:
    """An auto model's requests at list prices, against the same requests on its large model
    alone (each answer's prompt and output tokens at the large model's prices)."""
    return {
        "entries": t.requests,
        "list_price": credits(t.list_price),
        "always_large": credits(t.baseline),
        "saving": credits(t.baseline - t.list_price),
        "saving_share": None if t.baseline == 0 else (t.baseline - t.list_price) / t.baseline,
        "cost": credits(t.cost),
    }


def margin(
    day: str, per_model: dict[str, Totals], per_route: dict[str, Totals] | None = None
) -> dict[str, Any]:
    """The day's report: the totals, then each model's, then each auto model's saving (a
    route ``<auto>:shadow`` is its shadow evaluation: the operator's cost, nobody's charge)."""
    fields = Totals.__dataclass_fields__
    total = Totals(**{f: sum(getattr(t, f) for t in per_model.values()) for f in fields})
    return {
        "day": day,
        **_line(total),
        "models": {model: _line(t) for model, t in per_model.items()},
        "routes": {route: _saving(t) for route, t in (per_route or {}).items() if route},
    }


def render(report: dict[str, Any]) -> str:
    """The report as text for a terminal."""

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    lines = [f"Margin for {report['day']} (UTC), in credits"]
    rows = [("all models", report), *report["models"].items()]
    for name, r in rows:
        lines += [
            f"\n{name}: {r['requests']} requests",
            f"  input tokens   {r['input_tokens']:>14,}  (cache hit {r['input_tokens_cache_hit']:,},"
            f" miss {r['input_tokens_cache_miss']:,})",
            f"  output tokens  {r['output_tokens']:>14,}",
            f"  revenue        {r['theoretical_revenue']:>14.6f}  theoretical, at list prices",
            f"                 {r['actual_revenue']:>14.6f}  actual, after free use and discounts",
            f"  cost           {r['cost']:>14.6f}",
            f"  margin         {pct(r['theoretical_margin']):>14}  theoretical;"
            f" {pct(r['actual_margin'])} actual",
        ]
    for name, r in report.get("routes", {}).items():
        lines += [
            f"\n{name}: {r['entries']} ledger entries routed",
            f"  at list prices {r['list_price']:>14.6f}",
            f"  always large   {r['always_large']:>14.6f}",
            f"  saving         {r['saving']:>14.6f}  ({pct(r['saving_share'])})",
        ]
    return "\n".join(lines)
