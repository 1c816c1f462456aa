"""Monthly statements and usage exports under ``/admin/v1/orgs/{org}/``: the operator's admin
keys, or the organisation's own admin key (as for its usage)."""

from __future__ import annotations

import re
from typing import cast

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .accounts import account_of_org
from .admin_access import moment, month_start, org_of
from .errors import InvalidRequest
from .routes import JSON, gateway_of
from .statements import as_json, collect, month_bounds
from .usage_export import FORMATS, GRANULARITIES, Format, Granularity, export

_MEDIA = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


async def statement(request: Request) -> Response:
    org = await org_of(request, "/admin/v1/orgs/{org}/statements/{month}")
    month = request.path_params["month"]
    try:
        month_bounds(month)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="month") from None
    ledger = gateway_of(request).meter.ledger
    await ledger.flush()
    found = await collect(ledger.db, account_of_org(org.id), month)
    return JSON(as_json(found, org.name, org.plan))


def _choice(request: Request, name: str, allowed: tuple[str, ...]) -> str:
    value = request.query_params.get(name, allowed[0])
    if value not in allowed:
        raise InvalidRequest(f"'{name}' must be one of {', '.join(allowed)}.", param=name)
    return value


async def usage_export(request: Request) -> Response:
    """``?since=&until=&format=csv|json&granularity=entry|hour``; since defaults to this
    month's start, until to none. Streamed: entries leave a page at a time."""
    org = await org_of(request, "/admin/v1/orgs/{org}/usage/export")
    since = moment(request, "since") or month_start()
    until = moment(request, "until")
    fmt = cast(Format, _choice(request, "format", FORMATS))
    granularity = cast(Granularity, _choice(request, "granularity", GRANULARITIES))
    ledger = gateway_of(request).meter.ledger
    await ledger.flush()
    # A header is Latin-1 and a quote would end the name: keep the safe characters.
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", org.name)
    name = f"usage-{safe}-{since.date().isoformat()}-{granularity}.{fmt}"
    return StreamingResponse(
        export(ledger, account_of_org(org.id), since, until, fmt, granularity),
        media_type=_MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


routes = [
    Route("/admin/v1/orgs/{org}/statements/{month}", statement, methods=["GET"]),
    Route("/admin/v1/orgs/{org}/usage/export", usage_export, methods=["GET"]),
]
