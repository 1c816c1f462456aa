"""``POST /v1/feedback``: what a caller thought of a response, by its id, kept with the model
that answered as an outcome for routing to learn from; ``GET /admin/v1/feedback`` reads it
back (the operator all, an organisation's admin its own)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import InvalidRequest, NotFound
from .routes import JSON, gateway_of, read_json, trace_of
from .schemas import parse
from .storage.contents import ContentStore
from .storage.feedback import MAX_LIST, FeedbackStore


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(min_length=1, max_length=160)]  # the response's id
    rating: Literal["good", "bad"] | None = None
    score: Annotated[float, Field(ge=0, le=1)] | None = None  # 0 bad .. 1 good
    comment: Annotated[str, Field(max_length=2000)] = ""

    @model_validator(mode="after")
    def _one_judgement(self) -> FeedbackBody:
        if (self.rating is None) == (self.score is None):
            raise ValueError("give either 'rating' (good or bad) or 'score' (0 to 1)")
        return self

    @property
    def value(self) -> float:
        if self.score is not None:
            return self.score
        return 1.0 if self.rating == "good" else 0.0


def _stores(request: Request) -> tuple[FeedbackStore, ContentStore]:
    feedback: FeedbackStore = request.app.state.feedback
    contents: ContentStore = request.app.state.provenance.contents
    return feedback, contents


async def give(request: Request) -> Response:
    trace = trace_of(request, "/v1/feedback")
    caller = await gateway_of(request).auth.authenticate(
        request.headers.get("authorization"), trace
    )
    body: FeedbackBody = parse(FeedbackBody, await read_json(request))
    store, contents = _stores(request)
    found = await contents.get(body.id)
    # Another organisation's response reads as unknown, as any of its things do.
    if found is None or (caller.role != "admin" and found.org_id != caller.org_id):
        raise NotFound(f"No response '{body.id}' is stored for you.", param="id")
    made = await store.add(body.id, found.org_id, caller.id, found.model, body.value, body.comment)
    return JSON(made.card(), status_code=201)


async def recent(request: Request) -> Response:
    trace = trace_of(request, "/admin/v1/feedback")
    caller = await gateway_of(request).auth.authenticate_admin(
        request.headers.get("authorization"), trace, org_admin_too=True
    )
    try:
        limit = int(request.query_params.get("limit", "100"))
    except ValueError:
        raise InvalidRequest("'limit' must be a whole number.", param="limit") from None
    if not 1 <= limit <= MAX_LIST:
        raise InvalidRequest(f"'limit' must be 1 to {MAX_LIST}.", param="limit")
    store, _ = _stores(request)
    org = None if caller.role == "admin" else caller.org_id
    found = await store.recent(limit, org)
    return JSON({"object": "list", "data": [f.card() for f in found]})


routes = [
    Route("/v1/feedback", give, methods=["POST"]),
    Route("/admin/v1/feedback", recent, methods=["GET"]),
]
