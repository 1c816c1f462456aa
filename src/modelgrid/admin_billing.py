"""Credits, usage and the ledger under ``/admin/v1/orgs/{org}/``.

The operator's admin keys reach every organisation; an organisation's admin key reads its own
usage and ledger, and to it every other organisation does not exist (404, as unknown).
Only the operator grants credits. Statements and exports: admin_statements.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import admin_statements
from .accounts import account_of_org
from .admin_access import moment, month_start, org_of
from .errors import InvalidRequest, PermissionDenied
from .pricing import credits, micro
from .report import margin
from .routes import JSON, gateway_of, read_json, trace_of
from .schemas import Body, parse
from .storage.ledger import LedgerEntry
from .usage_card import usage_card


class Grant(Body):
    # Positive: a top-up; negative: a correction. At most a million credits a call.
    amount: Annotated[float, Field(ge=-1_000_000, le=1_000_000)]
    note: Annotated[str, Field(max_length=200)] = ""


def _since(request: Request) -> datetime:
    """``?since=`` (an ISO date or time, UTC unless it says); default: this month's start."""
    return moment(request, "since") or month_start()


async def usage(request: Request) -> Response:
    org = await org_of(request, "/admin/v1/orgs/{org}/usage")
    meter = gateway_of(request).meter
    since = _since(request)
    await meter.ledger.flush()
    return JSON(await usage_card(meter.ledger, org, since))


def entry_card(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "request_id": entry.request_id,
        "key_id": entry.key_id,
        "model": entry.model,
        "deployment": entry.deployment,
        "plan": entry.plan,
        "tokens_in": entry.tokens_in,
        "tokens_cached": entry.tokens_cached,
        "tokens_out": entry.tokens_out,
        "list_price": credits(entry.list_price),
        "charged": credits(entry.charge),
        "cost": credits(entry.cost),
        "route": entry.route,  # the auto model that chose the model, if one did
        "baseline": credits(entry.baseline),  # the same answer on that auto's large model
        "outcome": entry.outcome,
        "status": entry.status,
        "started_at": entry.started_at.isoformat(),
        "created_at": entry.created_at.isoformat(),
    }


async def ledger(request: Request) -> Response:
    org = await org_of(request, "/admin/v1/orgs/{org}/ledger")
    meter = gateway_of(request).meter
    raw_limit = request.query_params.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 10_000:
        raise InvalidRequest("'limit' must be a whole number from 1 to 10000.", param="limit")
    await meter.ledger.flush()
    found = await meter.ledger.entries(
        account_of_org(org.id), since=_since(request), limit=int(raw_limit)
    )
    return JSON({"object": "list", "data": [entry_card(e) for e in found]})


async def grant_credits(request: Request) -> Response:
    org = await org_of(request, "/admin/v1/orgs/{org}/credits", operator_only=True)
    body: Grant = parse(Grant, await read_json(request))
    amount = micro(body.amount)
    if amount == 0:
        raise InvalidRequest("'amount' must not be zero.", param="amount")
    meter = gateway_of(request).meter
    account = account_of_org(org.id)
    balance = await meter.balance(account)
    if balance + amount < 0:
        raise PermissionDenied(
            f"A correction of {body.amount:g} would leave {org.name} a negative balance."
        )
    await meter.grant(account, amount, "topup" if amount > 0 else "adjustment", body.note)
    return JSON({"org": org.name, "balance": credits(balance + amount)}, status_code=201)


async def margin_report(request: Request) -> Response:
    """``?day=YYYY-MM-DD`` (UTC; default today): the margin report (operator only)."""
    gateway = gateway_of(request)
    trace = trace_of(request, "/admin/v1/reports/margin")
    await gateway.auth.authenticate_admin(request.headers.get("authorization"), trace)
    day = moment(request, "day") or datetime.now(UTC)
    start = day.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=UTC)
    await gateway.meter.ledger.flush()
    ledger, end = gateway.meter.ledger, start + timedelta(days=1)
    per_model, per_route = await ledger.by_model(start, end), await ledger.by_route(start, end)
    return JSON(margin(start.date().isoformat(), per_model, per_route))


routes = [
    Route("/admin/v1/reports/margin", margin_report, methods=["GET"]),
    Route("/admin/v1/orgs/{org}/usage", usage, methods=["GET"]),
    Route("/admin/v1/orgs/{org}/ledger", ledger, methods=["GET"]),
    Route("/admin/v1/orgs/{org}/credits", grant_credits, methods=["POST"]),
    *admin_statements.routes,
]
