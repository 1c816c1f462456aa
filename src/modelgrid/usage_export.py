"""An organisation's usage as CSV or JSON: every ledger entry, or hourly sums per model.

Entries come a page at a time and leave as they come, so an export of any range holds one
page in memory; only raw entries still kept (see ``ledger_retention_days``) can be exported
one by one. Hourly sums cover every hour, pruned or not, from the roll-ups and raw entries
together; their window is widened to whole hours. Money is in credits: exact decimals with
six places in CSV, numbers in JSON (as everywhere in the API).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Literal

import orjson

from .pricing import credits
from .storage.ledger import Ledger, LedgerEntry
from .storage.usage import ceil_hour, floor_hour, usage_sums

Format = Literal["csv", "json"]
Granularity = Literal["entry", "hour"]
FORMATS: tuple[Format, ...] = ("csv", "json")
GRANULARITIES: tuple[Granularity, ...] = ("entry", "hour")

_SUMS = ("tokens_in", "tokens_cached", "tokens_out", "list_price", "charged", "cost")
COLUMNS: dict[Granularity, tuple[str, ...]] = {
    "entry": (
        "request_id",
        "key_id",
        "model",
        "deployment",
        "plan",
        *_SUMS,
        "outcome",
        "status",
        "started_at",
        "created_at",
        "route",
        "baseline",
    ),
    "hour": ("hour", "model", "plan", "requests", *_SUMS),
}
MONEY = frozenset({"list_price", "charged", "cost", "baseline"})  # micro-credits in the rows


def _entry_row(e: LedgerEntry) -> dict[str, Any]:
    return {
        "request_id": e.request_id,
        "key_id": e.key_id,
        "model": e.model,
        "deployment": e.deployment,
        "plan": e.plan,
        "tokens_in": e.tokens_in,
        "tokens_cached": e.tokens_cached,
        "tokens_out": e.tokens_out,
        "list_price": e.list_price,
        "charged": e.charge,
        "cost": e.cost,
        "outcome": e.outcome,
        "status": e.status,
        "started_at": e.started_at.isoformat(),
        "created_at": e.created_at.isoformat(),
        "route": e.route,
        "baseline": e.baseline,
    }


async def rows(
    ledger: Ledger,
    account: str,
    since: datetime | None,
    until: datetime | None,
    granularity: Granularity,
) -> AsyncIterator[list[dict[str, Any]]]:
    """Pages of rows, oldest first; money in micro-credits."""
    if granularity == "entry":
        async for page in ledger.scan(account, since, until):
            yield [_entry_row(e) for e in page]
        return
    start = None if since is None else floor_hour(since)
    end = None if until is None else ceil_hour(until)
    found = await usage_sums(ledger.db, account, start, end, by=("hour", "model", "plan"))
    yield [
        {
            "hour": hour.isoformat(),
            "model": model,
            "plan": plan,
            "requests": t.requests,
            "tokens_in": t.tokens_in,
            "tokens_cached": t.tokens_cached,
            "tokens_out": t.tokens_out,
            "list_price": t.list_price,
            "charged": t.charge,
            "cost": t.cost,
        }
        for (hour, model, plan), t in found.items()
    ]


def decimal_credits(amount: int) -> str:
    """Micro-credits as credits, exactly: 7200 -> "0.007200"."""
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 1_000_000)
    return f"{sign}{whole}.{fraction:06d}"


async def as_csv(
    pages: AsyncIterator[list[dict[str, Any]]], granularity: Granularity
) -> AsyncIterator[str]:
    """A header row, then a chunk of lines per page."""
    columns = COLUMNS[granularity]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    yield buffer.getvalue()
    async for page in pages:
        buffer.seek(0)
        buffer.truncate()
        for row in page:
            writer.writerow(
                decimal_credits(row[c]) if c in MONEY else ("" if row[c] is None else row[c])
                for c in columns
            )
        yield buffer.getvalue()


async def as_json(pages: AsyncIterator[list[dict[str, Any]]]) -> AsyncIterator[str]:
    """One JSON list, written a page at a time."""
    yield "["
    first = True
    async for page in pages:
        if not page:
            continue
        shown = [{k: credits(v) if k in MONEY else v for k, v in row.items()} for row in page]
        text = b",".join(orjson.dumps(row) for row in shown).decode()
        yield text if first else "," + text
        first = False
    yield "]\n"


def export(
    ledger: Ledger,
    account: str,
    since: datetime | None,
    until: datetime | None,
    fmt: Format,
    granularity: Granularity,
) -> AsyncIterator[str]:
    pages = rows(ledger, account, since, until, granularity)
    return as_csv(pages, granularity) if fmt == "csv" else as_json(pages)
