"""Provenance: where a text came from. The audit log's public key and receipts (a leaf with
its inclusion proof and signed checkpoint, checkable with the public key alone), and the
watermark detector."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .audit.store import AuditLog
from .errors import InvalidRequest, NotFound
from .provenance.lookup import THRESHOLD, Provenance
from .routes import JSON, gateway_of, read_json, trace_of

MAX_TEXT = 200_000  # characters a detection scores at most


def _audit(request: Request) -> AuditLog:
    audit: AuditLog = request.app.state.audit
    return audit


def _provenance(request: Request) -> Provenance:
    provenance: Provenance = request.app.state.provenance
    return provenance


async def public_key(request: Request) -> Response:
    """No key needed: anyone holding a receipt must be able to check it."""
    trace_of(request, "/v1/provenance/key")
    return JSON(_audit(request).public_key.to_json())


async def receipt(request: Request) -> Response:
    trace = trace_of(request, "/v1/provenance/{content_id}")
    await gateway_of(request).auth.authenticate(request.headers.get("authorization"), trace)
    content_id = request.path_params["content_id"]
    audit = _audit(request)
    # A response of the last second is in a journal, not yet in the tree: a kept response's
    # leaf in the stored conversations' (committed with it), any other in the audit log's.
    contents = _provenance(request).contents
    if contents.pending:
        await contents.flush()
    if audit.pending:
        await audit.flush()
    found = await audit.lookup(content_id)
    if found is None:
        raise NotFound(f"No audit record for content id '{content_id}'.", code="not_found")
    return JSON(found.to_json())


async def detect(request: Request) -> Response:
    trace = trace_of(request, "/v1/provenance/detect")
    gateway = gateway_of(request)
    await gateway.auth.authenticate(request.headers.get("authorization"), trace)
    body = await read_json(request)
    text, model = _text(body), body.get("model") if isinstance(body, dict) else None
    if model is not None and not isinstance(model, str):
        raise InvalidRequest("Invalid type for 'model': expected a string.", param="model")
    engine = gateway.catalogue.detector(model)
    # Tokenising a long text takes milliseconds: off the event loop.
    result: dict[str, Any] = await asyncio.to_thread(engine.detect_watermark, text)
    return JSON(result | {"model": model or engine.name})


async def lookup(request: Request) -> Response:
    """Stored responses similar to a text, for every model (closed ones too): the operator's
    admin keys search all, anyone else their own organisation's."""
    trace = trace_of(request, "/v1/provenance/lookup")
    caller = await gateway_of(request).auth.authenticate(
        request.headers.get("authorization"), trace
    )
    body = await read_json(request)
    text = _text(body)
    limit, threshold = body.get("limit", 5), body.get("threshold", THRESHOLD)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 50:
        raise InvalidRequest("'limit' must be an integer from 1 to 50.", param="limit")
    if not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
        raise InvalidRequest("'threshold' must be a number from 0 to 1.", param="threshold")
    if caller.role != "admin" and caller.org_id is None:
        return JSON({"object": "list", "data": []})  # a lone key has no stored outputs to see
    provenance = _provenance(request)
    org = None if caller.role == "admin" else caller.org_id
    found = await provenance.lookup(text, limit, float(threshold), org)
    data = [
        {
            "content_id": m.content_id,
            "similarity": round(m.similarity, 4),
            "created": int(m.created_at.timestamp()),
            "model": m.model,
        }
        for m in found
    ]
    return JSON({"object": "list", "data": data})


def _text(body: Any) -> str:
    if not isinstance(body, dict) or "text" not in body:
        raise InvalidRequest("Missing required parameter: 'text'.", param="text")
    text = body["text"]
    if not isinstance(text, str):
        raise InvalidRequest("Invalid type for 'text': expected a string.", param="text")
    if len(text) > MAX_TEXT:
        raise InvalidRequest(f"'text' is longer than {MAX_TEXT} characters.", param="text")
    return text


routes = [
    Route("/v1/provenance/key", public_key, methods=["GET"]),
    Route("/v1/provenance/detect", detect, methods=["POST"]),
    Route("/v1/provenance/lookup", lookup, methods=["POST"]),
    Route("/v1/provenance/{content_id}", receipt, methods=["GET"]),
]
