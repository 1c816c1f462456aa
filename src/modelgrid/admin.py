"""The operator's API under ``/admin/v1``: every call needs an admin key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import InvalidRequest, NotFound, PermissionDenied
from .gateway import Gateway
from .routes import JSON, gateway_of, read_json, trace_of
from .schemas import Body, parse
from .storage.keys import KeyRecord, Role
from .storage.members import MemberStore, key_role
from .storage.orgs import Organisation, OrgStore


class CreateKey(Body):
    name: Annotated[str, Field(max_length=200)] = ""
    role: Annotated[str, Field(pattern="^(user|org_admin|admin)$")] = "user"
    org: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    plan: str | None = None
    expires_at: str | None = None  # ISO 8601; UTC unless it says
    member: Annotated[str, Field(min_length=1, max_length=320)] | None = None  # id or e-mail


class CreateOrg(Body):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    plan: str | None = None
    # The e-mail of its first owner, added if not yet a member.
    owner: Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None


def members_of(request: Request) -> MemberStore:
    store: MemberStore = request.app.state.members
    return store


def orgs_of(request: Request) -> OrgStore:
    orgs: OrgStore = request.app.state.orgs
    return orgs


def _plan(gateway: Gateway, plan: str | None) -> str | None:
    if plan is not None and plan not in gateway.admission.plans:
        raise InvalidRequest(f"No plan '{plan}'.", param="plan")
    return plan


def _expiry(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest("'expires_at' must be an ISO 8601 date.", param="expires_at") from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when <= datetime.now(UTC):
        raise InvalidRequest("'expires_at' is in the past.", param="expires_at")
    return when


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
        "member": record.member_id,
    }


async def list_keys(request: Request) -> Response:
    """All keys for the operator; its own organisation's for an organisation's admin."""
    gateway = gateway_of(request)
    caller = await gateway.auth.authenticate_admin(
        request.headers.get("authorization"), trace_of(request, "/admin/v1/keys"), True
    )
    keys = await gateway.keys.list_all(_scope(caller))
    return JSON({"object": "list", "data": [key_card(k) for k in keys]})


def _scope(caller: KeyRecord) -> str | None:
    """The organisation an admin key is kept to: None for the operator's."""
    return None if caller.role == "admin" else caller.org_id


async def create_key(request: Request) -> Response:
    gateway = gateway_of(request)
    caller = await gateway.auth.authenticate_admin(
        request.headers.get("authorization"), trace_of(request, "/admin/v1/keys"), True
    )
    body: CreateKey = parse(CreateKey, await read_json(request))
    if caller.role == "org_admin":
        # an organisation's admin makes keys for its own organisation, on the plan it has
        if body.role == "admin" or body.plan or (body.org and body.org != caller.org):
            raise PermissionDenied("An organisation's admin key manages its own keys only.")
        body = body.model_copy(update={"org": caller.org})
    admin = body.role == "admin"
    if admin and (body.org or body.plan):
        raise InvalidRequest("An admin key belongs to no organisation and no plan.", param="org")
    if body.plan and not body.org:
        raise InvalidRequest("'plan' needs 'org': plans belong to organisations.", param="plan")
    plan, expires_at = _plan(gateway, body.plan), _expiry(body.expires_at)
    org_id = None
    if body.org:
        org = await orgs_of(request).ensure(
            body.org, plan, gateway.admission.default_plan, request.app.state.starting_credits
        )
        org_id = org.id
    if body.role == "org_admin" and org_id is None:
        raise InvalidRequest("An organisation's admin key needs 'org'.", param="org")
    role: Role = "admin" if admin else "org_admin" if body.role == "org_admin" else "user"
    member_id = None
    if body.member is not None:
        # A member's key has the member's powers, whatever 'role' says.
        if org_id is None:
            raise InvalidRequest("'member' needs 'org'.", param="member")
        member = await members_of(request).get(org_id, body.member)
        if member is None:
            raise NotFound("No member has that id or e-mail address.", param="member")
        if caller.role != "admin" and member.role == "owner" and caller.member_role != "owner":
            raise PermissionDenied("Only the organisation's owners make keys for owners.")
        role, member_id = key_role(member.role), member.id
    key = await gateway.keys.create(
        name=body.name, role=role, org_id=org_id, expires_at=expires_at, member_id=member_id
    )
    record = await gateway.keys.verify(key)
    assert record is not None
    return JSON({**key_card(record), "key": key}, status_code=201)


async def revoke_key(request: Request) -> Response:
    gateway = gateway_of(request)
    caller = await gateway.auth.authenticate_admin(
        request.headers.get("authorization"), trace_of(request, "/admin/v1/keys/{key}"), True
    )
    try:
        revoked = await gateway.keys.revoke(request.path_params["key"], _scope(caller))
    except LookupError as exc:
        raise InvalidRequest(str(exc), param="key") from None
    if not revoked:
        raise NotFound("No active key has that id or prefix.", param="key")
    return JSON(key_card(revoked[0]))


def org_card(org: Organisation) -> dict[str, Any]:
    return {"id": org.id, "name": org.name, "plan": org.plan, "keys": org.keys}


async def list_orgs(request: Request) -> Response:
    gateway = gateway_of(request)
    await gateway.auth.authenticate_admin(
        request.headers.get("authorization"), trace_of(request, "/admin/v1/orgs")
    )
    data = [org_card(o) for o in await orgs_of(request).list_all()]
    return JSON({"object": "list", "data": data})


async def create_org(request: Request) -> Response:
    """Create an organisation, or move an existing one to another plan."""
    gateway = gateway_of(request)
    await gateway.auth.authenticate_admin(
        request.headers.get("authorization"), trace_of(request, "/admin/v1/orgs")
    )
    body: CreateOrg = parse(CreateOrg, await read_json(request))
    org = await orgs_of(request).ensure(
        body.name,
        _plan(gateway, body.plan),
        gateway.admission.default_plan,
        request.app.state.starting_credits,
    )
    if body.owner and await members_of(request).get(org.id, body.owner) is None:
        await members_of(request).add(org.id, body.owner, "", "owner")
    return JSON(org_card(org), status_code=201)


async def list_plans(request: Request) -> Response:
    gateway = gateway_of(request)
    await gateway.auth.authenticate_admin(
        request.headers.get("authorization"), trace_of(request, "/admin/v1/plans")
    )
    data = [
        {"name": name, "default": name == gateway.admission.default_plan, **plan.model_dump()}
        for name, plan in gateway.admission.plans.items()
    ]
    return JSON({"object": "list", "data": data})


async def list_deployments(request: Request) -> Response:
    gateway = gateway_of(request)
    trace = trace_of(request, "/admin/v1/deployments")
    await gateway.auth.authenticate_admin(request.headers.get("authorization"), trace)
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
    Route("/admin/v1/orgs", list_orgs, methods=["GET"]),
    Route("/admin/v1/orgs", create_org, methods=["POST"]),
    Route("/admin/v1/plans", list_plans, methods=["GET"]),
    Route("/admin/v1/keys", list_keys, methods=["GET"]),
    Route("/admin/v1/keys", create_key, methods=["POST"]),
    Route("/admin/v1/keys/{key}", revoke_key, methods=["DELETE"]),
]
