"""Redemption codes under ``/admin/v1``: the operator makes and lists them; the operator or an
organisation's own admin key redeems one for that organisation.

The grant is written by the redemption itself; running servers count it within a second (the
grant cache's lifetime), as they do a grant from the CLI.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .accounts import account_of_org
from .admin import _expiry, orgs_of
from .admin_access import org_of
from .errors import InvalidRequest
from .pricing import credits, micro
from .routes import JSON, gateway_of, read_json, trace_of
from .schemas import Body, parse
from .storage.codes import MAX_COUNT, CodeRecord, CodeRejected, CodeStore, public_prefix
from .storage.orgs import Organisation

_MESSAGES = {
    "unknown": "No such redemption code.",
    "already redeemed": "This code has already been redeemed.",
    "expired": "This code has expired.",
}


class CreateCodes(Body):
    # Credits each; at most a million, as for a grant.
    amount: Annotated[float, Field(gt=0, le=1_000_000)]
    count: Annotated[int, Field(ge=1, le=MAX_COUNT)] = 1
    expires_at: str | None = None  # ISO 8601; UTC unless it says
    note: Annotated[str, Field(max_length=200)] = ""


class Redeem(Body):
    code: Annotated[str, Field(min_length=1, max_length=200)]


def codes_of(request: Request) -> CodeStore:
    codes: CodeStore = request.app.state.codes
    return codes


def code_card(record: CodeRecord, now: datetime, orgs: dict[str, str]) -> dict[str, Any]:
    """A code as listed (never the code itself); ``orgs`` maps accounts to organisation names."""
    by = record.redeemed_by
    return {
        "id": record.id,
        "prefix": record.prefix,
        "amount": credits(record.amount),
        "note": record.note,
        "status": record.status(now),
        "created_at": record.created_at.isoformat(),
        "expires_at": record.expires_at.isoformat() if record.expires_at else None,
        "redeemed_at": record.redeemed_at.isoformat() if record.redeemed_at else None,
        "redeemed_by": by,
        "org": orgs.get(by) if by else None,
    }


def org_names(found: list[Organisation]) -> dict[str, str]:
    return {account_of_org(org.id): org.name for org in found}


async def create_codes(request: Request) -> Response:
    gateway = gateway_of(request)
    trace = trace_of(request, "/admin/v1/codes")
    await gateway.auth.authenticate_admin(request.headers.get("authorization"), trace)
    body: CreateCodes = parse(CreateCodes, await read_json(request))
    amount = micro(body.amount)
    if amount <= 0:  # positive, yet under a micro-credit
        raise InvalidRequest("'amount' must be at least 0.000001.", param="amount")
    expires_at = _expiry(body.expires_at)
    made = await codes_of(request).create(amount, body.count, expires_at, body.note)
    data = [
        {
            "code": code,
            "prefix": public_prefix(code),
            "amount": credits(amount),
            "expires_at": expires_at.isoformat() if expires_at else None,
        }
        for code in made
    ]
    return JSON({"object": "list", "data": data}, status_code=201)


async def list_codes(request: Request) -> Response:
    gateway = gateway_of(request)
    trace = trace_of(request, "/admin/v1/codes")
    await gateway.auth.authenticate_admin(request.headers.get("authorization"), trace)
    found = await codes_of(request).list_all()
    names = org_names(await orgs_of(request).list_all())
    now = datetime.now(UTC)
    return JSON({"object": "list", "data": [code_card(r, now, names) for r in found]})


async def redeem_code(request: Request) -> Response:
    org = await org_of(request, "/admin/v1/orgs/{org}/redeem")
    body: Redeem = parse(Redeem, await read_json(request))
    account = account_of_org(org.id)
    try:
        amount = await codes_of(request).redeem(body.code, account)
    except CodeRejected as exc:
        raise InvalidRequest(_MESSAGES[exc.reason], param="code", code="invalid_code") from None
    balance = await gateway_of(request).meter.balance(account)
    return JSON(
        {"org": org.name, "amount": credits(amount), "balance": credits(balance)}, status_code=201
    )


routes = [
    Route("/admin/v1/codes", list_codes, methods=["GET"]),
    Route("/admin/v1/codes", create_codes, methods=["POST"]),
    Route("/admin/v1/orgs/{org}/redeem", redeem_code, methods=["POST"]),
]
