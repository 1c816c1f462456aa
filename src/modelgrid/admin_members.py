"""Members under ``/admin/v1/orgs/{org}/members``.

The operator's admin keys manage every organisation's members; an organisation's owners and
admins (their keys) manage their own organisation's, and to them every other organisation
does not exist (404). Only the operator and owners make, unmake or remove owners.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .admin import members_of
from .admin_access import caller_and_org
from .errors import InvalidRequest, NotFound, PermissionDenied
from .routes import JSON, gateway_of, read_json
from .schemas import Body, parse
from .storage.keys import KeyRecord
from .storage.members import Member, MemberError, MemberRole
from .storage.orgs import Organisation

_ROLE = "^(owner|admin|member)$"


class AddMember(Body):
    email: Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
    name: Annotated[str, Field(max_length=200)] = ""
    role: Annotated[str, Field(pattern=_ROLE)] = "member"


class ChangeMember(Body):
    role: Annotated[str, Field(pattern=_ROLE)]


def member_card(member: Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "email": member.email,
        "name": member.name,
        "role": member.role,
        "keys": member.keys,
        "created_at": member.created_at.isoformat(),
    }


def _may_touch_owners(caller: KeyRecord) -> bool:
    return caller.role == "admin" or caller.member_role == "owner"


def _check(caller: KeyRecord, *roles: str) -> None:
    if "owner" in roles and not _may_touch_owners(caller):
        raise PermissionDenied("Only the organisation's owners make, unmake or remove owners.")


async def _member(request: Request, org: Organisation) -> Member:
    found = await members_of(request).get(org.id, request.path_params["member"])
    if found is None:
        raise NotFound("No member has that id or e-mail address.", param="member")
    return found


async def list_members(request: Request) -> Response:
    _, org = await caller_and_org(request, "/admin/v1/orgs/{org}/members")
    found = await members_of(request).list(org.id)
    return JSON({"object": "list", "data": [member_card(m) for m in found]})


async def add_member(request: Request) -> Response:
    caller, org = await caller_and_org(request, "/admin/v1/orgs/{org}/members")
    body: AddMember = parse(AddMember, await read_json(request))
    _check(caller, body.role)
    role: MemberRole = body.role  # type: ignore[assignment]  # the pattern allows no other
    try:
        member = await members_of(request).add(org.id, body.email, body.name, role)
    except MemberError as exc:
        raise InvalidRequest(str(exc), param="email", code="member_exists") from None
    return JSON(member_card(member), status_code=201)


async def change_member(request: Request) -> Response:
    caller, org = await caller_and_org(request, "/admin/v1/orgs/{org}/members/{member}")
    body: ChangeMember = parse(ChangeMember, await read_json(request))
    member = await _member(request, org)
    _check(caller, member.role, body.role)
    role: MemberRole = body.role  # type: ignore[assignment]
    try:
        changed = await members_of(request).set_role(member, role)
    except MemberError as exc:
        raise InvalidRequest(str(exc), param="role", code="last_owner") from None
    gateway_of(request).keys.forget()  # their keys' new powers apply at once here
    return JSON(member_card(changed))


async def remove_member(request: Request) -> Response:
    caller, org = await caller_and_org(request, "/admin/v1/orgs/{org}/members/{member}")
    member = await _member(request, org)
    _check(caller, member.role)
    try:
        revoked = await members_of(request).remove(member)
    except MemberError as exc:
        raise InvalidRequest(str(exc), param="member", code="last_owner") from None
    gateway_of(request).keys.forget()
    return JSON({**member_card(member), "removed": True, "keys_revoked": revoked})


routes = [
    Route("/admin/v1/orgs/{org}/members", list_members, methods=["GET"]),
    Route("/admin/v1/orgs/{org}/members", add_member, methods=["POST"]),
    Route("/admin/v1/orgs/{org}/members/{member}", change_member, methods=["PATCH"]),
    Route("/admin/v1/orgs/{org}/members/{member}", remove_member, methods=["DELETE"]),
]
