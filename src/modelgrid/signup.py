"""Self-signup: ``POST /v1/signup`` makes an organisation on the default plan, its owner,
and the owner's first key. Off by default (``self_signup``); when on, signups across the
whole server are rate-limited (``signups_per_hour``), shared by replicas through Redis."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .admin import members_of, orgs_of
from .errors import Conflict, PermissionDenied, RateLimited
from .pricing import credits
from .routes import JSON, gateway_of, read_json, trace_of
from .schemas import Body, parse
from .settings import Settings
from .storage.members import key_role


class SignUp(Body):
    organisation: Annotated[str, Field(min_length=2, max_length=200, pattern=r"^[\w .@&'-]+$")]
    email: Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
    name: Annotated[str, Field(max_length=200)] = ""


class OrganisationExists(Conflict):
    code = "organisation_exists"


async def sign_up(request: Request) -> Response:
    trace_of(request, "/v1/signup")
    settings: Settings = request.app.state.settings
    if not settings.self_signup:
        raise PermissionDenied("Self-signup is off on this server; ask its operator for a key.")
    body: SignUp = parse(SignUp, await read_json(request))
    gateway = gateway_of(request)
    decision = await gateway.admission.limiter.hit(
        "signup:all", settings.signups_per_hour, period=3600.0
    )
    if not decision.allowed:
        raise RateLimited(
            "Too many signups on this server just now; try again later.",
            headers={"Retry-After": str(math.ceil(decision.retry_after))},
        )
    orgs = orgs_of(request)
    try:
        org = await orgs.ensure(
            body.organisation,
            None,
            gateway.admission.default_plan,
            request.app.state.starting_credits,
        )
    except IntegrityError:  # the same name, signed up a moment before
        org = None
    if org is None or not org.created:
        raise OrganisationExists(
            f"An organisation called '{body.organisation}' exists.", param="organisation"
        )
    owner = await members_of(request).add(org.id, body.email, body.name, "owner")
    key = await gateway.keys.create(
        name=f"{owner.email} (signup)",
        role=key_role("owner"),
        org_id=org.id,
        member_id=owner.id,
    )
    return JSON(
        {
            "organisation": org.name,
            "plan": org.plan,
            "owner": owner.email,
            "credits": credits(request.app.state.starting_credits),
            "key": key,
        },
        status_code=201,
    )


routes = [Route("/v1/signup", sign_up, methods=["POST"])]
