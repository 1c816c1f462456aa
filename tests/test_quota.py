"""Which counters a request counts against, and what a refusal says."""

from __future__ import annotations

from datetime import UTC, datetime

from modelgrid.quota import buckets, refusal, ttl_seconds
from modelgrid.settings import BUILTIN_PLANS, PlanSettings

NOW = datetime(2026, 11, 27, 23, 30, tzinfo=UTC)


def test_free_plan_counts_tokens_per_day_and_month() -> None:
    found = buckets(BUILTIN_PLANS["free"], "org:a", NOW)
    assert [(b.kind, b.key, b.cap) for b in found] == [
        ("daily_tokens", "org:a:tokens:2026-11-27", 200_000),
        ("monthly_tokens", "org:a:tokens:2026-11", 2_000_000),
    ]
    assert found[0].until == datetime(2026, 11, 28, tzinfo=UTC)
    assert found[1].until == datetime(2026, 12, 1, tzinfo=UTC)
    assert [b.amount(120, 999) for b in found] == [120, 120]


def test_billed_plan_counts_credits_capped_by_the_grants() -> None:
    plan = PlanSettings(billed=True, monthly_credits=5.0)
    found = buckets(plan, "org:a", datetime(2026, 12, 31, 12, 0, tzinfo=UTC), granted=3_000_000)
    assert [(b.kind, b.key, b.cap) for b in found] == [
        ("monthly_credits", "org:a:charged:2026-12", 5_000_000),
        ("credits", "org:a:charged", 3_000_000),
    ]
    assert found[0].until == datetime(2027, 1, 1, tzinfo=UTC)
    assert found[1].until is None and ttl_seconds(found[1], NOW) == 0
    assert [b.amount(120, 999) for b in found] == [999, 999]


def test_unlimited_plan_counts_nothing() -> None:
    assert buckets(BUILTIN_PLANS["enterprise"], "org:a", NOW)[0].kind == "credits"
    assert buckets(PlanSettings(), "org:a", NOW) == []


def test_refusals_say_when_they_end() -> None:
    daily, monthly = buckets(BUILTIN_PLANS["free"], "org:a", NOW)
    text, wait = refusal(daily, NOW)
    assert "daily quota of 200000 tokens" in text and wait == 30 * 60
    assert refusal(monthly, NOW)[1] == 3 * 86_400 + 30 * 60
    credits = buckets(PlanSettings(billed=True), "org:a", NOW)[0]
    text, wait = refusal(credits, NOW)
    assert "top up" in text and wait is None
    assert ttl_seconds(daily, NOW) == 30 * 60 + 86_400
