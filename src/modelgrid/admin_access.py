"""Who may read an organisation under ``/admin/v1/orgs/{org}/``, and the dates they ask for.

The operator's admin keys reach every organisation; an organisation's admin key reaches its
own, and to it every other organisation does not exist (404, as unknown).
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request

from .admin import orgs_of
from .errors import InvalidRequest, NotFound
from .routes import gateway_of, trace_of
from .storage.keys import KeyRecord
from .storage.orgs import Organisation


async def caller_and_org(
    request: Request, route: str, operator_only: bool = False
) -> tuple[KeyRecord, Organisation]:
    """The admin key calling, and the organisation ``{org}`` it may reach."""
    gateway = gateway_of(request)
    caller = await gateway.auth.authenticate_admin(
        request.headers.get("authorization"), trace_of(request, route), not operator_only
    )
    org = await orgs_of(request).get(request.path_params["org"])
    if org is None or (caller.role != "admin" and caller.org_id != org.id):
        raise NotFound(f"No organisation '{request.path_params['org']}'.", param="org")
    return caller, org


async def org_of(request: Request, route: str, operator_only: bool = False) -> Organisation:
    return (await caller_and_org(request, route, operator_only))[1]


def moment(request: Request, name: str) -> datetime | None:
    """``?<name>=`` as an ISO 8601 date or time, UTC unless it says; None when absent."""
    text = request.query_params.get(name)
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"'{name}' must be an ISO 8601 date.", param=name) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def month_start() -> datetime:
    return datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
