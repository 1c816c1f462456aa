"""Usage export: entries a page at a time, CSV and JSON that read back as the ledger, and
hourly sums that outlive pruning."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from modelgrid.storage.database import Database
from modelgrid.storage.ledger import Ledger, LedgerEntry
from modelgrid.storage.rollups import prune, roll_up
from modelgrid.usage_export import COLUMNS, decimal_credits, export

from .ledger_data import H0, commit, expected, spread

pytestmark = pytest.mark.anyio

HOUR = timedelta(hours=1)


async def text(chunks: AsyncIterator[str]) -> str:
    return "".join([chunk async for chunk in chunks])


def micro(value: Any) -> int:
    return int(Decimal(str(value)) * 1_000_000)


def test_decimal_credits_are_exact() -> None:
    assert decimal_credits(0) == "0.000000"
    assert decimal_credits(7_200) == "0.007200"
    assert decimal_credits(-1) == "-0.000001"
    assert decimal_credits(-2_500_000) == "-2.500000"
    assert decimal_credits(5_000_000_000_000_123) == "5000000000.000123"


async def test_scan_pages_through_entries_oldest_first(db: Database, tmp_path: Path) -> None:
    entries = spread(40, hours=2)
    # Entries at one instant: the page boundary falls among them and must split nothing.
    same = [replace(e, created_at=H0 + HOUR) for e in spread(7, seed=5, prefix="tie")]
    await commit(db, tmp_path, [*entries, *same])
    book = Ledger(db, tmp_path)
    pages = [page async for page in book.scan("org:acme", None, None, page=3)]
    assert all(len(page) == 3 for page in pages[:-1]) and 1 <= len(pages[-1]) <= 3
    found = [e for page in pages for e in page]
    mine = [e for e in [*entries, *same] if e.account == "org:acme"]
    assert sorted(e.request_id for e in found) == sorted(e.request_id for e in mine)
    assert [e.created_at for e in found] == sorted(e.created_at for e in mine)
    window = [e async for page in book.scan("org:acme", H0 + HOUR, H0 + 2 * HOUR, 5) for e in page]
    assert {e.request_id for e in window} == {
        e.request_id for e in mine if H0 + HOUR <= e.created_at < H0 + 2 * HOUR
    }


def same_entry(row: dict[str, Any], e: LedgerEntry) -> None:
    assert row["request_id"] == e.request_id and row["model"] == e.model
    assert row["key_id"] == e.key_id and row["plan"] == e.plan
    assert (row["deployment"] or None) == e.deployment
    assert [int(row[k]) for k in ("tokens_in", "tokens_cached", "tokens_out", "status")] == [
        e.tokens_in,
        e.tokens_cached,
        e.tokens_out,
        e.status,
    ]
    assert [micro(row[k]) for k in ("list_price", "charged", "cost")] == [
        e.list_price,
        e.charge,
        e.cost,
    ]
    assert row["outcome"] == e.outcome
    assert row["created_at"] == e.created_at.isoformat()
    assert row["started_at"] == e.started_at.isoformat()


async def test_entries_round_trip_through_csv_and_json(db: Database, tmp_path: Path) -> None:
    # Most of them acme's, for two pages of a thousand and a part page.
    entries = [
        e if i % 5 == 0 else replace(e, account="org:acme", org_id="acme")
        for i, e in enumerate(spread(3500, hours=5))
    ]
    entries[1] = replace(entries[1], deployment=None, outcome="cancelled", created_at=H0 + HOUR)
    await commit(db, tmp_path, entries)
    book = Ledger(db, tmp_path)
    since, until = H0 + timedelta(minutes=30), H0 + 4 * HOUR
    mine = sorted(
        (e for e in entries if e.account == "org:acme" and since <= e.created_at < until),
        key=lambda e: e.created_at,
    )
    assert len(mine) > 2000

    as_csv = await text(export(book, "org:acme", since, until, "csv", "entry"))
    reader = csv.DictReader(io.StringIO(as_csv))
    assert tuple(reader.fieldnames or ()) == COLUMNS["entry"]
    from_csv = list(reader)
    as_json = orjson.loads(await text(export(book, "org:acme", since, until, "json", "entry")))
    assert len(from_csv) == len(as_json) == len(mine)
    for row_csv, row_json, e in zip(from_csv, as_json, mine, strict=True):
        same_entry(row_csv, e)
        same_entry(row_json, e)
        assert list(row_json) == list(COLUMNS["entry"])

    empty = await text(export(book, "org:nobody", None, None, "json", "entry"))
    assert orjson.loads(empty) == []
    header_only = await text(export(book, "org:nobody", None, None, "csv", "entry"))
    assert header_only == ",".join(COLUMNS["entry"]) + "\n"


async def test_hourly_export_covers_whole_hours_and_outlives_pruning(
    db: Database, tmp_path: Path
) -> None:
    entries = spread(400, hours=6, seed=9)
    await commit(db, tmp_path, entries)
    book = Ledger(db, tmp_path)
    since, until = H0 + timedelta(minutes=45), H0 + 3 * HOUR + timedelta(minutes=1)

    async def hours() -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        as_json = await text(export(book, "org:globex", since, until, "json", "hour"))
        as_csv = await text(export(book, "org:globex", since, until, "csv", "hour"))
        return orjson.loads(as_json), list(csv.DictReader(io.StringIO(as_csv)))

    before = await hours()
    # Widened to whole hours: 9:00 up to 13:00.
    want = expected(entries, "org:globex", H0, H0 + 4 * HOUR, ("hour", "model", "plan"))
    assert [(r["hour"], r["model"], r["plan"]) for r in before[0]] == [
        (h.isoformat(), m, p) for h, m, p in want
    ]
    for row_json, row_csv, t in zip(*before, want.values(), strict=True):
        for row in (row_json, row_csv):
            assert int(row["requests"]) == t.requests and int(row["tokens_in"]) == t.tokens_in
            assert int(row["tokens_out"]) == t.tokens_out
            assert micro(row["charged"]) == t.charge and micro(row["list_price"]) == t.list_price
            assert micro(row["cost"]) == t.cost
    assert [r["requests"] for r in before[1]] == [str(r["requests"]) for r in before[0]]

    await roll_up(db, H0 + 7 * HOUR)
    assert await prune(db, H0 + timedelta(days=30), 1, {}) == len(entries)
    assert await hours() == before
    # Single entries are gone with the raw rows; their sums are not.
    assert orjson.loads(await text(export(book, "org:globex", since, until, "json", "entry"))) == []
