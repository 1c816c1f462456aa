"""Quotas and credits as counters: which ones a request counts against, and when they reset.

Pure functions. Each counter holds what has been used plus what is reserved for requests in
flight, and a request may go ahead only if every counter it touches stays within its cap.
Credits are the one counter that never resets: it holds everything the account was charged,
capped at everything it was granted, so that no balance ever goes negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Literal

from .pricing import micro
from .settings import PlanSettings

Kind = Literal["daily_tokens", "monthly_tokens", "monthly_credits", "credits"]


@dataclass(frozen=True, slots=True)
class Bucket:
    kind: Kind
    key: str  # the counter, e.g. "org:ab12:tokens:2026-11-27"
    cap: int  # tokens, or micro-credits
    since: datetime  # the start of the counter's window (of all time, for credits)
    until: datetime | None  # when it resets; None: never

    @property
    def in_tokens(self) -> bool:
        return self.kind in ("daily_tokens", "monthly_tokens")

    def amount(self, tokens: int, charge: int) -> int:
        return tokens if self.in_tokens else charge


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=4)
def _windows(today: date) -> tuple[datetime, datetime, datetime, datetime, str, str]:
    """A UTC day's windows and their names, worked out once a day rather than per request."""
    day = datetime(today.year, today.month, today.day, tzinfo=UTC)
    month = day.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    return day, day + timedelta(days=1), month, next_month, today.isoformat(), today.isoformat()[:7]


def buckets(
    plan: PlanSettings,
    account: str,
    now: datetime,
    granted: int = 0,
    models: tuple[str, ...] = ("",),
) -> list[Bucket]:
    """The counters a request on ``plan`` for ``account`` counts against at ``now`` (UTC);
    ``granted``: the account's credits granted so far, in micro-credits; token quotas count
    only the models the plan's ``quota_models`` cover (``models``: the model, then for a
    layer those it is built on, any of which may be covered)."""
    day, next_day, month, next_month, day_name, month_name = _windows(now.date())
    found: list[Bucket] = []
    covered = any(plan.quota_covers(m) for m in models)
    if plan.daily_tokens and covered:
        key = f"{account}:tokens:{day_name}"
        found.append(Bucket("daily_tokens", key, plan.daily_tokens, day, next_day))
    if plan.monthly_tokens and covered:
        key = f"{account}:tokens:{month_name}"
        found.append(Bucket("monthly_tokens", key, plan.monthly_tokens, month, next_month))
    if plan.billed and plan.monthly_credits:
        key = f"{account}:charged:{month_name}"
        cap = micro(plan.monthly_credits)
        found.append(Bucket("monthly_credits", key, cap, month, next_month))
    if plan.billed:
        found.append(Bucket("credits", f"{account}:charged", granted, EPOCH, None))
    return found


def ttl_seconds(bucket: Bucket, now: datetime) -> int:
    """How long a counter must live: past its window's end, with a day's grace for clocks and
    late settlements; 0 for never."""
    if bucket.until is None:
        return 0
    return int((bucket.until - now).total_seconds()) + 86_400


def refusal(bucket: Bucket, now: datetime) -> tuple[str, int | None]:
    """The message for a request that ``bucket`` cannot cover, and the seconds until it can
    (None: not by waiting)."""
    wait = None if bucket.until is None else max(1, int((bucket.until - now).total_seconds()))
    if bucket.kind == "daily_tokens":
        text = f"You exceeded your daily quota of {bucket.cap} tokens; it resets at 00:00 UTC."
    elif bucket.kind == "monthly_tokens":
        text = f"You exceeded your monthly quota of {bucket.cap} tokens; it resets on the 1st."
    elif bucket.kind == "monthly_credits":
        text = (
            f"This request could exceed your monthly budget of {bucket.cap / 1e6:g} credits; "
            "it resets on the 1st."
        )
    else:
        text = (
            "Your credits do not cover what this request may cost (its prompt and max_tokens); "
            "top up, or lower max_tokens."
        )
    return text, wait
