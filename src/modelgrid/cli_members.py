"""``modelgrid members``: an organisation's owners, admins and members, on the database
directly (running servers see a change to a member's keys within ``change_poll_seconds``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
import orjson

from .cli_options import config_option, run_for_org
from .settings import Settings
from .storage.database import Database
from .storage.members import ROLES, Member, MemberError, MemberStore
from .storage.orgs import Organisation

T = TypeVar("T")

role_option = click.option(
    "--role", type=click.Choice(ROLES), default="member", show_default=True, help="Their role."
)


def _run(
    config: str | None, org_name: str, action: Callable[[MemberStore, Organisation], Awaitable[T]]
) -> T:
    async def with_members(db: Database, org: Organisation, settings: Settings) -> T:
        try:
            return await action(MemberStore(db), org)
        except MemberError as exc:
            raise click.ClickException(str(exc)) from None

    return run_for_org(config, org_name, with_members)


async def _found(store: MemberStore, org: Organisation, who: str) -> Member:
    member = await store.get(org.id, who)
    if member is None:
        raise click.ClickException(f"{who!r} is not a member of {org.name}")
    return member


@click.group()
def members() -> None:
    """An organisation's owners, admins and members: the people behind its keys."""


@members.command("add")
@config_option
@click.option("--org", "org_name", required=True, help="The organisation.")
@click.option("--name", default="", help="Their name.")
@role_option
@click.argument("email")
def members_add(config: str | None, org_name: str, name: str, role: Any, email: str) -> None:
    """Add EMAIL to an organisation (then `modelgrid keys create --org ORG --member EMAIL`)."""

    async def action(store: MemberStore, org: Organisation) -> Member:
        return await store.add(org.id, email, name, role)

    member = _run(config, org_name, action)
    click.echo(f"{member.email} is now {member.role} of {org_name}.", err=True)


@members.command("list")
@config_option
@click.option("--org", "org_name", required=True, help="The organisation.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per member.")
def members_list(config: str | None, org_name: str, as_json: bool) -> None:
    """List an organisation's members with their role and active keys."""

    async def action(store: MemberStore, org: Organisation) -> list[Member]:
        return await store.list(org.id)

    found = _run(config, org_name, action)
    if as_json:
        rows = [
            {"id": m.id, "email": m.email, "name": m.name, "role": m.role, "keys": m.keys}
            for m in found
        ]
        click.echo(orjson.dumps(rows).decode())
        return
    click.echo(f"{'EMAIL':32}  {'ROLE':6}  {'KEYS':4}  NAME")
    for m in found:
        click.echo(f"{m.email:32}  {m.role:6}  {m.keys:<4}  {m.name}")


@members.command("role")
@config_option
@click.option("--org", "org_name", required=True, help="The organisation.")
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
def members_role(config: str | None, org_name: str, email: str, role: Any) -> None:
    """Give EMAIL another ROLE; their keys change with it."""

    async def action(store: MemberStore, org: Organisation) -> Member:
        return await store.set_role(await _found(store, org, email), role)

    member = _run(config, org_name, action)
    click.echo(f"{member.email} is now {member.role} of {org_name}.", err=True)


@members.command("remove")
@config_option
@click.option("--org", "org_name", required=True, help="The organisation.")
@click.argument("email")
def members_remove(config: str | None, org_name: str, email: str) -> None:
    """Remove EMAIL from an organisation and revoke their keys."""

    async def action(store: MemberStore, org: Organisation) -> int:
        return await store.remove(await _found(store, org, email))

    revoked = _run(config, org_name, action)
    click.echo(f"Removed {email} from {org_name}; {revoked} keys revoked.", err=True)
