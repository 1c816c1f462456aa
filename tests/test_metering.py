"""Reservation and settlement on real databases, in-process and in Redis: under any
concurrency the charges settled never pass a quota and no balance goes negative."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelgrid.counters import Counters, MemoryCounters, RedisCounters
from modelgrid.errors import InsufficientQuota
from modelgrid.metering import Charge, Meter
from modelgrid.pricing import Price, charge
from modelgrid.settings import PlanSettings
from modelgrid.storage.database import Database
from modelgrid.storage.ledger import Ledger
from modelgrid.trace import Trace

pytestmark = pytest.mark.anyio

PRICE = Price(input=1_000_000, cached_input=500_000, output=2_000_000)  # 1 and 2 credits / M


@pytest.fixture(params=["memory", "redis"])
def counters(request: pytest.FixtureRequest) -> Counters:
    if request.param == "memory":
        return MemoryCounters()
    url: str = request.getfixturevalue("redis_url")
    return RedisCounters(url, prefix=f"test:{uuid.uuid4().hex}:")


@pytest.fixture
async def meter(database_url: str, counters: Counters, tmp_path: Path) -> AsyncIterator[Meter]:
    db = Database(database_url)
    await db.migrate()
    ledger = Ledger(db, tmp_path / "journal")
    await ledger.start()
    yield Meter(counters, ledger, {"m": PRICE})
    await ledger.close()
    await counters.close()
    await db.close()


def payer(plan: PlanSettings, account: str = "org:o1") -> Charge:
    return Charge(account, account.split(":")[1], "k1", "custom", plan, "m", PRICE)


async def call(meter: Meter, who: Charge, tokens_in: int, most: int, out: int) -> int | None:
    """One request: reserve, generate ``out`` tokens (or fail with none), settle; returns
    the tokens it was allowed to use, None when refused."""
    trace = Trace(f"req_{uuid.uuid4().hex}", "POST", "/v1/chat/completions")
    trace.tokens_in = tokens_in
    try:
        await meter.reserve(who, tokens_in, most, trace)
    except InsufficientQuota:
        return None
    await asyncio.sleep(random.random() / 100)  # settlements interleave with reservations
    trace.tokens_out = out
    if out:
        trace.first_token_at = time.perf_counter()
    else:
        trace.outcome = "upstream_error"
    await trace.settle()
    return tokens_in + out if out else 0


async def test_200_concurrent_requests_never_settle_more_than_the_quota(meter: Meter) -> None:
    who = payer(PlanSettings(daily_tokens=1_000))
    rng = random.Random(7)
    shapes = [(rng.randint(1, 30), 40, rng.choice([0, 5, 20, 40])) for _ in range(200)]
    used = await asyncio.gather(*(call(meter, who, i, m, o) for i, m, o in shapes))
    admitted = [u for u in used if u is not None]
    assert len(admitted) < 200, "the quota must have refused some"
    await meter.ledger.flush()
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    totals = await meter.ledger.totals(who.account, day)
    assert totals.requests == len(admitted)
    assert totals.tokens_in + totals.tokens_out == sum(admitted) <= 1_000
    key = f"{who.account}:tokens:{day:%Y-%m-%d}"
    assert await meter.counters.get(key) == sum(admitted)  # nothing left reserved


async def test_credits_never_go_negative(meter: Meter) -> None:
    who = payer(PlanSettings(billed=True), account="org:o2")
    await meter.grant(who.account, 50_000, "topup")  # 0.05 credits
    results = await asyncio.gather(*(call(meter, who, 100, 200, 150) for _ in range(200)))
    admitted = [r for r in results if r is not None]
    # Each reserves 100 × 1 + 200 × 2 = 500 micro-credits and settles to 100 + 300 = 400.
    assert 50_000 // 500 <= len(admitted) <= 50_000 // 400
    await meter.ledger.flush()
    balance = await meter.balance(who.account)
    assert balance == 50_000 - 400 * len(admitted) >= 0
    assert await meter.ledger.spent(who.account) == 400 * len(admitted)


async def test_failures_cost_nothing_and_release_their_reservation(meter: Meter) -> None:
    who = payer(PlanSettings(billed=True, daily_tokens=100), account="org:o3")
    await meter.grant(who.account, 1_000, "topup")
    for _ in range(20):  # far more than the quota would allow if failures were charged
        assert await call(meter, who, 30, 60, 0) == 0
    assert await meter.balance(who.account) == 1_000
    await meter.ledger.flush()
    entries = await meter.ledger.entries(who.account, limit=50)
    assert len(entries) == 20
    assert {(e.tokens_in, e.tokens_out, e.charge, e.outcome) for e in entries} == {
        (0, 0, 0, "upstream_error")
    }
    assert await call(meter, who, 30, 60, 10) == 40


async def test_settlement_charges_exact_usage_and_never_more_than_reserved(meter: Meter) -> None:
    plan = PlanSettings(billed=True, price_multiplier=1.5)
    who = payer(plan, account="org:o4")
    await meter.grant(who.account, 1_000_000, "topup")
    trace = Trace("req_exact", "POST", "/v1/chat/completions")
    trace.tokens_in = 10
    await meter.reserve(who, 10, 50, trace)
    # The upstream reported more prompt tokens than estimated, some from its cache.
    trace.tokens_in, trace.tokens_cached, trace.tokens_out = 40, 30, 20
    trace.first_token_at = time.perf_counter()
    await trace.settle()
    await meter.ledger.flush()
    entry = await meter.ledger.by_request("req_exact")
    assert entry is not None
    exact = charge(PRICE, 40, 30, 20, 1.5)
    reserved = charge(PRICE, 10, 0, 50, 1.5)
    assert entry.charge == min(exact, reserved) and entry.list_price == 10 * 1 + 30 // 2 + 40
    assert (entry.tokens_in, entry.tokens_cached, entry.tokens_out) == (40, 30, 20)


async def test_monthly_budget_caps_charges(meter: Meter) -> None:
    who = payer(PlanSettings(billed=True, monthly_credits=0.002), account="org:o5")
    await meter.grant(who.account, 1_000_000, "topup")
    results = await asyncio.gather(*(call(meter, who, 100, 200, 200) for _ in range(50)))
    admitted = [r for r in results if r is not None]
    assert len(admitted) == 2_000 // 500  # each reserves and settles 500 micro-credits
    await meter.ledger.flush()
    assert await meter.ledger.spent(who.account) == 2_000


async def test_counters_reload_from_the_ledger(meter: Meter) -> None:
    """A new process (or Redis restarted) starts its counters from what the ledger holds."""
    who = payer(PlanSettings(daily_tokens=100), account="org:o6")
    assert await call(meter, who, 20, 20, 20) == 40
    fresh = Meter(MemoryCounters(), meter.ledger, {"m": PRICE})
    assert await call(fresh, who, 20, 40, 10) == 30
    assert await call(fresh, who, 10, 40, 10) is None  # 70 used; 10 + 40 would pass 100
