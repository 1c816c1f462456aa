"""Monthly statements against hand-computed values, before and after roll-up and pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelgrid.statements import as_json, build, collect, month_bounds, render
from modelgrid.storage.database import Database
from modelgrid.storage.ledger import Ledger, Totals
from modelgrid.storage.rollups import prune, roll_up
from modelgrid.storage.tables import credit_grants

from .ledger_data import commit, raw_ids
from .test_ledger import entry

pytestmark = pytest.mark.anyio

C = 1_000_000  # one credit in micro-credits
NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)


def test_month_bounds() -> None:
    assert month_bounds("2026-11") == (NOV, DEC)
    assert month_bounds("2026-12") == (DEC, datetime(2027, 1, 1, tzinfo=UTC))
    for wrong in ("2026-13", "2026-00", "2026-1", "26-01", "2026-11-01", "", "november"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            month_bounds(wrong)


def test_the_arithmetic_of_a_statement() -> None:
    large = Totals(2, 300, 100, 50, 9 * C, 7 * C, C)
    small = Totals(1, 10, 0, 5, C // 2, C // 4, 1)
    found = build(
        "2026-11",
        15 * C,
        3_500_000,
        {"topup": 20 * C, "refund": 3},
        {"small": small, "large": large},
    )
    assert found.opening == 11_500_000
    assert found.granted == {
        "starting": 0,
        "topup": 20 * C,
        "code": 0,
        "adjustment": 0,
        "refund": 3,
    }
    assert found.credited == 20 * C + 3
    assert found.charged == 7_250_000
    assert found.closing == 11_500_000 + 20 * C + 3 - 7_250_000
    assert list(found.models) == ["large", "small"]
    shown = as_json(found, "acme", "pro")
    assert shown["opening_balance"] == 11.5 and shown["charged"] == 7.25
    assert shown["closing_balance"] == pytest.approx(24.250003)
    assert shown["requests"] == 3
    assert shown["models"]["large"] == {
        "requests": 2,
        "tokens_in": 300,
        "tokens_cached": 100,
        "tokens_out": 50,
        "list_price": 9.0,
        "charged": 7.0,
    }
    text = render(found, "acme", "pro")
    assert "statement for 2026-11 (2026-11-01 to 2026-12-01, UTC)" in text
    assert "opening balance         11.500000" in text
    assert "closing balance         24.250003" in text


async def grant(
    db: Database, kind: str, amount: int, at: datetime, account: str = "org:acme"
) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            credit_grants.insert().values(account=account, amount=amount, kind=kind, created_at=at)
        )


async def test_a_statement_from_the_database_holds_through_roll_up_and_pruning(
    db: Database, tmp_path: Path
) -> None:
    day = timedelta(days=1)
    await grant(db, "starting", 10 * C, datetime(2026, 10, 2, tzinfo=UTC))
    await grant(db, "topup", 5 * C, datetime(2026, 10, 20, tzinfo=UTC))
    await grant(db, "topup", 20 * C, NOV + 2 * day)
    await grant(db, "code", 2_500_000, NOV + 9 * day)
    await grant(db, "adjustment", -C, NOV + 10 * day)
    await grant(db, "topup", 99 * C, DEC)  # December's
    await grant(db, "topup", 77 * C, NOV, account="org:other")
    await commit(
        db,
        tmp_path,
        [
            # October: 3,500,000 charged.
            entry("oct-1", at=datetime(2026, 10, 5, 8, 30, tzinfo=UTC), charge=C),
            entry("oct-2", at=datetime(2026, 10, 31, 23, 59, 59, 999999, tzinfo=UTC), charge=2 * C),
            entry("oct-3", at=datetime(2026, 10, 15, tzinfo=UTC), charge=C // 2, model="small"),
            # November.
            entry(
                "nov-1",
                at=NOV,
                model="large",
                tokens_in=1000,
                tokens_cached=200,
                tokens_out=300,
                list_price=5 * C,
                charge=4 * C,
            ),
            entry(
                "nov-2",
                at=NOV + 3 * day,
                model="large",
                tokens_in=10,
                tokens_cached=0,
                tokens_out=20,
                list_price=4 * C,
                charge=3 * C,
            ),
            entry(
                "nov-3",
                at=DEC - timedelta(microseconds=1),
                model="small",
                tokens_in=7,
                tokens_cached=1,
                tokens_out=2,
                list_price=300_000,
                charge=250_000,
            ),
            # December, and another organisation: not on the statement.
            entry("dec-1", at=DEC, charge=50 * C),
            entry("other", account="org:other", at=NOV + day, charge=60 * C),
        ],
    )
    opening = 10 * C + 5 * C - 3_500_000
    credited = 20 * C + 2_500_000 - C
    charged = 4 * C + 3 * C + 250_000
    closing = opening + credited - charged

    async def check() -> None:
        found = await collect(db, "org:acme", "2026-11")
        assert (found.opening, found.credited, found.charged, found.closing) == (
            opening,
            credited,
            charged,
            closing,
        )
        assert found.granted == {
            "starting": 0,
            "topup": 20 * C,
            "code": 2_500_000,
            "adjustment": -C,
        }
        assert found.models == {
            "large": Totals(2, 1010, 200, 320, 9 * C, 7 * C, 2 * 1_100),
            "small": Totals(1, 7, 1, 2, 300_000, 250_000, 1_100),
        }
        # The closing balance is the balance as of the month's end.
        december = await collect(db, "org:acme", "2026-12")
        assert december.opening == closing
        assert december.closing == closing + 99 * C - 50 * C
        book = Ledger(db, tmp_path)
        assert december.closing == await book.granted("org:acme") - await book.spent("org:acme")

    await check()
    await roll_up(db, DEC + 2 * day)
    await check()
    assert await prune(db, DEC + 400 * day, 1, {}) == 8
    assert await raw_ids(db) == set()
    await check()
