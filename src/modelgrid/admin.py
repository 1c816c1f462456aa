"""The operator's API under ``/admin/v1``: every call needs an admin key."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import InvalidRequest, NotFound
from .routes import JSON, gateway_of, read_json, trace_of
from .schemas import Body, parse
from .storage.keys import KeyRecord


class CreateKey(Body):
    name: Annotated[str, Field(max_length=200)] = ""
    role: Annotated[str, Field(pattern="^(user|admin)$")] = "user"


def key_card(record: KeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "prefix": record.prefix,
        "name": record.name,
        "role": record.role,
        "created_at": record.created_at.isoformat(),
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
        "expires_at": record.expires_at.isoformat() if record.expires_at else None,
        "org": record.org,
        "plan": record.plan,
    }


async def list_keys(request: Request) -> Response:
    gateway = gateway_of(request)
    await gateway.authenticate_admin(
        request.headers.get("authorization"), trace_of(request, "/admin/v1/keys")
    )
    return JSON({"object": "list", "data": [key_card(k) for k in await gateway.keys.list_all()]})


async def create_key(request: Request) -> Response:
    gateway = gateway_of(request)
    await gateway.authenticate_admin(
        request.headers.get("authorization"), trace_of(request, "/admin/v1/keys")
    )
    body: CreateKey = parse(CreateKey, await read_json(request))
    key = await gateway.keys.create(
        name=body.name, role="admin" if body.role == "admin" else "user"
    )
    record = await gateway.keys.verify(key)
    assert record is not None
    return JSON({**key_card(record), "key": key}, status_code=201)


async def revoke_key(request: Request) -> Response:
    gateway = gateway_of(request)
    await gateway.authenticate_admin(
        request.headers.get("authorization"), trace_of(request, "/admin/v1/keys/{key}")
    )
    try:
        revoked = await gateway.keys.revoke(request.path_params["key"])
    except LookupError as exc:
        raise InvalidRequest(str(exc), param="key") from None
    if not revoked:
        raise NotFound("No active key has that id or prefix.", param="key")
    return JSON(key_card(revoked[0]))


async def list_deployments(request: Request) -> Response:
    gateway = gateway_of(request)
    trace = trace_of(request, "/admin/v1/deployments")
    await gateway.authenticate_admin(request.headers.get("authorization"), trace)
    data = [
        {
            "model": entry.id,
            "balancing": entry.settings.balancing,
            "fallbacks": entry.settings.fallbacks,
            "deployments": entry.router.snapshot(),
        }
        for entry in gateway.catalogue
    ]
    return JSON({"object": "list", "data": data})


routes = [
    Route("/admin/v1/deployments", list_deployments, methods=["GET"]),
    Route("/admin/v1/keys", list_keys, methods=["GET"]),
    Route("/admin/v1/keys", create_key, methods=["POST"]),
    Route("/admin/v1/keys/{key}", revoke_key, methods=["DELETE"]),
]
