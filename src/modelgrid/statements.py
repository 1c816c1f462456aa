"""Monthly statements: an organisation's credits and charges for one calendar month (UTC).

Opening balance (every grant less every charge before the month), the credits granted in the
month by kind, the charges per model, and the closing balance, which is the opening balance
plus the month's credits less its charges. Arithmetic in micro-credits; credits only for
display. The sums come from the roll-ups and raw entries together (storage/usage.py), and a
month's ends fall on hours, so a statement is whole after raw entries are pruned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .pricing import credits
from .storage.database import Database
from .storage.usage import Totals, grants_by_kind, usage_sums

KINDS = ("starting", "topup", "code", "adjustment")  # always shown, in this order
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """``YYYY-MM`` as its first instant and the next month's, in UTC; ValueError otherwise."""
    found = _MONTH.match(month)
    if found is None:
        raise ValueError(f"{month!r} is not a month: use YYYY-MM, e.g. 2026-11")
    year, number = int(found[1]), int(found[2])
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


@dataclass(frozen=True, slots=True)
class Statement:
    month: str
    start: datetime
    end: datetime
    opening: int  # micro-credits
    granted: dict[str, int]  # the month's grants per kind
    models: dict[str, Totals]  # the month's usage per model

    @property
    def credited(self) -> int:
        return sum(self.granted.values())

    @property
    def charged(self) -> int:
        return sum(t.charge for t in self.models.values())

    @property
    def closing(self) -> int:
        return self.opening + self.credited - self.charged


def build(
    month: str,
    granted_before: int,
    charged_before: int,
    granted: dict[str, int],
    models: dict[str, Totals],
) -> Statement:
    start, end = month_bounds(month)
    return Statement(
        month=month,
        start=start,
        end=end,
        opening=granted_before - charged_before,
        granted={kind: 0 for kind in KINDS} | granted,
        models=dict(sorted(models.items())),
    )


async def collect(db: Database, account: str, month: str) -> Statement:
    """The statement of ``account`` for ``month``, from the database."""
    start, end = month_bounds(month)
    before = (await usage_sums(db, account, None, start))[()]
    models = await usage_sums(db, account, start, end, by=("model",))
    return build(
        month,
        sum((await grants_by_kind(db, account, None, start)).values()),
        before.charge,
        await grants_by_kind(db, account, start, end),
        {key[0]: totals for key, totals in models.items()},
    )


def as_json(statement: Statement, org: str, plan: str) -> dict[str, Any]:
    s = statement
    return {
        "object": "statement",
        "org": org,
        "plan": plan,
        "month": s.month,
        "from": s.start.isoformat(),
        "to": s.end.isoformat(),
        "opening_balance": credits(s.opening),
        "credits": {kind: credits(amount) for kind, amount in s.granted.items()},
        "credited": credits(s.credited),
        "models": {
            model: {
                "requests": t.requests,
                "tokens_in": t.tokens_in,
                "tokens_cached": t.tokens_cached,
                "tokens_out": t.tokens_out,
                "list_price": credits(t.list_price),
                "charged": credits(t.charge),
            }
            for model, t in s.models.items()
        },
        "requests": sum(t.requests for t in s.models.values()),
        "charged": credits(s.charged),
        "closing_balance": credits(s.closing),
    }


def render(statement: Statement, org: str, plan: str) -> str:
    s = statement
    lines = [
        f"{org} ({plan} plan), statement for {s.month} "
        f"({s.start.date().isoformat()} to {s.end.date().isoformat()}, UTC)",
        f"  opening balance  {credits(s.opening):>16.6f}",
        f"  credits granted  {credits(s.credited):>16.6f}",
        *(f"    {kind:<14} {credits(amount):>16.6f}" for kind, amount in s.granted.items()),
        f"  charged          {credits(s.charged):>16.6f}",
    ]
    for model, t in s.models.items():
        lines.append(
            f"    {model}: {t.requests} requests, {t.tokens_in} tokens in "
            f"({t.tokens_cached} cached), {t.tokens_out} out, list price "
            f"{credits(t.list_price):.6f}, charged {credits(t.charge):.6f}"
        )
    lines.append(f"  closing balance  {credits(s.closing):>16.6f}")
    return "\n".join(lines)
