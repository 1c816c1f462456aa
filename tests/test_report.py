"""The margin report's arithmetic, checked by hand."""

from __future__ import annotations

from modelgrid.report import margin, render
from modelgrid.storage.ledger import Totals


def test_margin_report_sums_models_and_computes_margins() -> None:
    per_model = {
        "large": Totals(10, 1_000, 400, 500, 3_000_000, 1_500_000, 600_000),
        "small": Totals(5, 200, 0, 100, 0, 0, 50_000),  # free use: revenue 0, still a cost
    }
    report = margin("2026-11-27", per_model)
    assert report["requests"] == 15 and report["input_tokens"] == 1_200
    assert report["input_tokens_cache_hit"] == 400 and report["input_tokens_cache_miss"] == 800
    assert report["output_tokens"] == 600
    assert report["theoretical_revenue"] == 3.0 and report["actual_revenue"] == 1.5
    assert report["cost"] == 0.65
    assert report["theoretical_margin"] == (3_000_000 - 650_000) / 3_000_000
    assert report["actual_margin"] == (1_500_000 - 650_000) / 1_500_000
    assert report["models"]["large"]["actual_margin"] == 0.6
    assert report["models"]["small"]["actual_margin"] is None  # no revenue: no margin
    text = render(report)
    assert "all models: 15 requests" in text and "small: 5 requests" in text
    assert "56.7% actual" in text


def test_an_empty_day() -> None:
    report = margin("2026-11-28", {})
    assert report["requests"] == 0 and report["models"] == {}
    assert report["actual_margin"] is None
