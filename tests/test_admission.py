from datetime import UTC, datetime
from typing import Any

import pytest

from modelgrid.accounts import account_of
from modelgrid.admission import Admission
from modelgrid.errors import ModelNotFound, RateLimited
from modelgrid.limiter import MemoryLimiter
from modelgrid.settings import PlanSettings
from modelgrid.storage.keys import KeyRecord
from modelgrid.trace import Trace

pytestmark = pytest.mark.anyio

PLANS = {
    "free": PlanSettings(requests_per_minute=2),
    "basic": PlanSettings(models=["a"], max_concurrency=1, tokens_per_minute=100),
}


class _Entry:
    def __init__(self, id: str) -> None:
        self.id = id
        self.layer = None


def key(role: str = "user", org: str | None = "acme", plan: str | None = "free") -> KeyRecord:
    now = datetime.now(UTC)
    return KeyRecord("k1", "mg-abc", "", role, now, None, org and "o1", org, plan)  # type: ignore[arg-type]


def entry(model_id: str) -> Any:
    return _Entry(model_id)


def test_plans_resolve_with_fallbacks() -> None:
    admission = Admission(MemoryLimiter(), PLANS, "free")
    assert admission.plan_of(key(role="admin")) is None
    assert admission.plan_of(key(plan="basic")) is PLANS["basic"]
    assert admission.plan_of(key(plan="gone")) is PLANS["free"]  # never no limits
    assert admission.plan_of(key(org=None, plan=None)) is PLANS["free"]
    assert account_of(key()) == "org:o1" and account_of(key(org=None)) == "key:k1"


async def test_forbidden_models_read_as_unknown_and_limits_apply() -> None:
    admission = Admission(MemoryLimiter(), PLANS, "free")
    with pytest.raises(ModelNotFound):
        await admission.admit(key(plan="basic"), entry("b"), Trace("r", "POST", "/"))
    assert not admission.visible(key(plan="basic"), entry("b"))
    assert admission.visible(key(role="admin"), entry("b"))
    traces = [Trace(f"r{i}", "POST", "/") for i in range(3)]
    await admission.admit(key(), entry("x"), traces[0])
    await admission.admit(key(), entry("x"), traces[1])
    with pytest.raises(RateLimited) as refused:
        await admission.admit(key(), entry("x"), traces[2])
    assert refused.value.status == 429 and int(refused.value.headers["Retry-After"]) >= 1
    assert (b"x-ratelimit-remaining-requests", b"0") in traces[1].headers


async def test_a_concurrency_slot_is_released_by_the_trace() -> None:
    admission = Admission(MemoryLimiter(), PLANS, "free")
    first = Trace("r1", "POST", "/")
    await admission.admit(key(plan="basic"), entry("a"), first)
    with pytest.raises(RateLimited):
        await admission.admit(key(plan="basic"), entry("a"), Trace("r2", "POST", "/"))
    for release in first.releases:
        await release()
    await admission.admit(key(plan="basic"), entry("a"), Trace("r3", "POST", "/"))
