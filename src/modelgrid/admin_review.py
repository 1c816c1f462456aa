"""The human review queue under ``/admin/v1/review``: the operator lists what the safety review
flagged and approves or rejects it.

Only the operator's admin keys review: flagged text may come from any organisation. A
decision records the deciding key (id and public prefix) and the time, and reaches the audit
log through the queue's ``on_decision``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import Conflict, InvalidRequest, NotFound
from .routes import JSON, gateway_of, read_json, trace_of
from .schemas import Body, parse
from .storage.keys import KeyRecord
from .storage.review_queue import (
    MAX_LIST,
    STATUSES,
    AlreadyDecided,
    Decision,
    ReviewItem,
    ReviewQueue,
    Status,
    UnknownItem,
)

DEFAULT_LIMIT = 100


class Decided(Conflict):
    code = "already_decided"


class Decide(Body):
    decision: Annotated[str, Field(pattern="^(approve|reject)$")]
    note: Annotated[str, Field(max_length=2000)] = ""


def review_queue_of(request: Request) -> ReviewQueue:
    queue: ReviewQueue = request.app.state.review_queue
    return queue


def item_card(item: ReviewItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "object": "review.item",
        "content_id": item.content_id,
        "created_at": item.created_at.isoformat(),
        "org_id": item.org_id,
        "key_id": item.key_id,
        "model": item.model,
        "stage": item.stage,
        "reasons": list(item.reasons),
        "excerpt": item.excerpt,
        "status": item.status,
        "decided_by": item.decided_by,
        "decided_by_prefix": item.decided_by_prefix,
        "decided_at": item.decided_at.isoformat() if item.decided_at else None,
        "note": item.note,
    }


async def _operator(request: Request, route: str) -> KeyRecord:
    trace = trace_of(request, route)
    return await gateway_of(request).auth.authenticate_admin(
        request.headers.get("authorization"), trace
    )


def _status(request: Request) -> Status | None:
    value = request.query_params.get("status")
    if value is None or value == "":
        return None
    for status in STATUSES:
        if value == status:
            return status
    raise InvalidRequest(
        f"'status' must be one of {', '.join(STATUSES)}; got {value!r}.",
        param="status",
        code="invalid_value",
    )


def _limit(request: Request) -> int:
    value = request.query_params.get("limit")
    if value is None:
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIST:
        raise InvalidRequest(
            f"'limit' must be a whole number from 1 to {MAX_LIST}; got {value!r}.",
            param="limit",
            code="invalid_value",
        )
    return limit


def _unknown() -> NotFound:
    return NotFound("No review item has that id.", param="id", code="review_item_not_found")


async def list_items(request: Request) -> Response:
    await _operator(request, "/admin/v1/review")
    status, limit = _status(request), _limit(request)
    found = await review_queue_of(request).list_items(status, limit)
    return JSON({"object": "list", "data": [item_card(item) for item in found]})


async def get_item(request: Request) -> Response:
    await _operator(request, "/admin/v1/review/{id}")
    item = await review_queue_of(request).get(request.path_params["id"])
    if item is None:
        raise _unknown()
    return JSON(item_card(item))


async def decide_item(request: Request) -> Response:
    caller = await _operator(request, "/admin/v1/review/{id}")
    body: Decide = parse(Decide, await read_json(request))
    decision: Decision = body.decision  # type: ignore[assignment]  # the pattern allows no other
    try:
        item = await review_queue_of(request).decide(
            request.path_params["id"], decision, caller.id, caller.prefix, body.note
        )
    except UnknownItem:
        raise _unknown() from None
    except AlreadyDecided as exc:
        decided = exc.item
        raise Decided(
            f"This item was already {decided.status} by {decided.decided_by_prefix or '?'}"
            f" at {decided.decided_at.isoformat() if decided.decided_at else '?'}.",
            param="id",
        ) from None
    return JSON(item_card(item))


routes = [
    Route("/admin/v1/review", list_items, methods=["GET"]),
    Route("/admin/v1/review/{id}", get_item, methods=["GET"]),
    Route("/admin/v1/review/{id}", decide_item, methods=["POST"]),
]
