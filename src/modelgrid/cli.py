"""The ``modelgrid`` command."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import httpx
import orjson

from .cli_options import (
    _check,
    _client,
    _settings,
    config_option,
    key_option,
    url_option,
)
from .pricing import micro
from .settings import Settings
from .storage.members import MemberStore, key_role
from .storage.overrides import OverrideStore


@click.group()
@click.version_option(package_name="modelgrid")
def main() -> None:
    """ModelGrid: language models as a metered utility, behind an OpenAI-compatible API."""


@main.command()
@config_option
@click.option("--host", help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to bind (default 8000).")
@click.option("--workers", type=int, help="Worker processes, each with its own engines.")
def serve(config: str | None, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the API (the embedded model unless the config says otherwise)."""
    import uvicorn

    from .app import announce_admin_key, app_from_environment, bootstrap, create_app
    from .http_protocol import HttpProtocol
    from .process_setup import set_up_process
    from .storage.database import Database
    from .storage.keys import KeyStore

    settings = _settings(config, host=host, port=port, workers=workers)
    missing = settings.missing_secrets(os.environ)
    if missing:
        raise click.ClickException("; ".join(missing))
    set_up_process(settings)

    async def prepare() -> str | None:
        db = Database(settings.resolved_database_url)
        try:
            return await bootstrap(db, KeyStore(db), settings)
        finally:
            await db.close()

    new_key = asyncio.run(prepare())
    if new_key is not None:
        announce_admin_key(new_key)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 10,
        "http": HttpProtocol,  # what a response writes in one turn, in one write
        # Nothing reads a client's address: uvicorn's proxy-headers middleware would only be
        # one more frame that every resumption of every request walks.
        "proxy_headers": False,
        # Which server answers is nobody's business but the operator's.
        "server_header": False,
    }
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **common)
        return
    if config:
        os.environ["MODELGRID_CONFIG"] = os.path.abspath(config)
    uvicorn.run(
        f"{app_from_environment.__module__}:{app_from_environment.__name__}",
        factory=True,
        workers=settings.workers,
        **common,
    )


@main.group()
def keys() -> None:
    """Create, list and revoke API keys (works on the database directly)."""


def _run_store(config: str | None, action: Any) -> Any:
    """Run ``action(keys, orgs, settings)`` against the configured database."""
    from .storage.database import Database
    from .storage.keys import KeyStore
    from .storage.orgs import OrgStore

    settings = _settings(config)

    async def run() -> Any:
        db = Database(settings.resolved_database_url)
        try:
            await db.migrate()
            return await action(KeyStore(db), OrgStore(db), settings)
        finally:
            await db.close()

    return asyncio.run(run())


async def _check_plan(settings: Settings, plan: str | None, orgs: Any) -> None:
    """The plan must exist: built in, configured, or set with `modelgrid plans set`."""
    if plan is None or plan in settings.all_plans:
        return
    stored = await OverrideStore(orgs.db).all("plan")
    if plan not in stored:
        known = ", ".join(sorted([*settings.all_plans, *stored]))
        raise click.ClickException(f"no plan {plan!r} (plans: {known})")


@keys.command("create")
@config_option
@click.option("--name", default="", help="A label to recognise the key by.")
@click.option("--org", help="The organisation the key belongs to (created if new).")
@click.option("--plan", help="The organisation's plan (sets it; default for a new one: free).")
@click.option("--expires", help="Lifetime (30d, 12h, 90m) or an ISO date; default: never.")
@click.option("--org-admin", is_flag=True, help="Manages its organisation's keys (needs --org).")
@click.option("--admin", is_flag=True, help="An operator's admin key (no organisation, no plan).")
@click.option("--member", help="A member's e-mail (needs --org): the key has their powers.")
def keys_create(
    config: str | None,
    name: str,
    org: str | None,
    plan: str | None,
    expires: str | None,
    org_admin: bool,
    admin: bool,
    member: str | None,
) -> None:
    """Create a key and print it alone on stdout; it is never shown again."""
    if admin and (org or plan):
        raise click.ClickException("an admin key belongs to no organisation and no plan")
    if plan and not org:
        raise click.ClickException("--plan needs --org: plans belong to organisations")
    if org_admin and (admin or not org):
        raise click.ClickException("--org-admin needs --org (and is not an operator's key)")
    expires_at = _expiry(expires) if expires else None

    async def action(keys: Any, orgs: Any, settings: Settings) -> str:
        await _check_plan(settings, plan, orgs)
        org_id = None
        if org:
            starting = micro(settings.starting_credits)
            org_id = (await orgs.ensure(org, plan, settings.default_plan, starting)).id
        role = "admin" if admin else "org_admin" if org_admin else "user"
        member_id = None
        if member:
            if org_id is None:
                raise click.ClickException("--member needs --org")
            found = await MemberStore(orgs.db).get(org_id, member)
            if found is None:
                raise click.ClickException(f"{member!r} is not a member of {org}")
            role, member_id = key_role(found.role), found.id
        key: str = await keys.create(
            name=name, role=role, org_id=org_id, expires_at=expires_at, member_id=member_id
        )
        return key

    key = _run_store(config, action)
    who = "an admin key" if admin else f"a key for {org}" if org else "a key"
    click.echo(f"Created {who}; store it now, it is shown once.", err=True)
    click.echo(key)


def _expiry(text: str) -> datetime:
    """``30d``, ``12h`` or ``90m`` from now, or an ISO 8601 date or time (UTC unless it says)."""
    units = {"d": 86400, "h": 3600, "m": 60}
    if text[-1:] in units and text[:-1].isdigit():
        return datetime.now(UTC) + timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise click.ClickException(
            f"--expires {text!r}: use 30d, 12h, 90m or an ISO date"
        ) from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when <= datetime.now(UTC):
        raise click.ClickException(f"--expires {text!r} is in the past")
    return when


@keys.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per key.")
def keys_list(config: str | None, as_json: bool) -> None:
    """List keys by prefix (keys themselves are stored only as hashes)."""
    from .admin import key_card

    async def action(keys: Any, orgs: Any, settings: Settings) -> list[Any]:
        return list(await keys.list_all())

    records = _run_store(config, action)
    if as_json:
        click.echo(orjson.dumps([key_card(r) for r in records]).decode())
        return
    click.echo(
        f"{'ID':32}  {'PREFIX':11}  {'ROLE':9}  {'STATUS':7}  {'CREATED':19}  {'ORG':16}  NAME"
    )
    for r in records:
        status = "active" if r.active else "revoked"
        created = r.created_at.strftime("%Y-%m-%d %H:%M:%S")
        org = r.org or "-"
        click.echo(
            f"{r.id:32}  {r.prefix:11}  {r.role:9}  {status:7}  {created:19}  {org:16}  {r.name}"
        )


@keys.command("revoke")
@config_option
@click.argument("key_id")
def keys_revoke(config: str | None, key_id: str) -> None:
    """Revoke a key by its id or prefix; every server refuses it within a second."""

    async def action(keys: Any, orgs: Any, settings: Settings) -> list[Any]:
        return list(await keys.revoke(key_id))

    try:
        revoked = _run_store(config, action)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    if not revoked:
        raise click.ClickException(f"no active key has the id or prefix {key_id!r}")
    click.echo(f"Revoked {revoked[0].prefix} ({revoked[0].id}).", err=True)


@main.group()
def orgs() -> None:
    """Organisations: who keys belong to, and which plan they are on."""


@orgs.command("create")
@config_option
@click.argument("name")
@click.option("--plan", help="The plan (default: the configured default_plan, free).")
@click.option("--owner", help="E-mail of its first owner (for a new organisation).")
def orgs_create(config: str | None, name: str, plan: str | None, owner: str | None) -> None:
    """Create an organisation, or move an existing one to PLAN."""

    async def action(keys: Any, orgs: Any, settings: Settings) -> Any:
        await _check_plan(settings, plan, orgs)
        org = await orgs.ensure(name, plan, settings.default_plan, micro(settings.starting_credits))
        if owner:
            store = MemberStore(orgs.db)
            if await store.get(org.id, owner) is None:
                await store.add(org.id, owner, "", "owner")
        return org

    org = _run_store(config, action)
    click.echo(f"{org.name} is on the {org.plan} plan.", err=True)


@orgs.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per organisation.")
def orgs_list(config: str | None, as_json: bool) -> None:
    """List organisations with their plan and active keys."""

    async def action(keys: Any, orgs: Any, settings: Settings) -> list[Any]:
        return list(await orgs.list_all())

    found = _run_store(config, action)
    if as_json:
        rows = [{"id": o.id, "name": o.name, "plan": o.plan, "keys": o.keys} for o in found]
        click.echo(orjson.dumps(rows).decode())
        return
    click.echo(f"{'NAME':24}  {'PLAN':12}  KEYS")
    for o in found:
        click.echo(f"{o.name:24}  {o.plan:12}  {o.keys}")


@main.command()
@url_option
@key_option
def models(url: str, key: str | None) -> None:
    """List the models a running server offers."""
    with _client(url, key) as client:
        try:
            data = _check(client.get("/v1/models"))
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach {url}: {exc}") from None
    for model in data["data"]:
        click.echo(f"{model['id']}\t{model.get('owned_by', '')}\t{model.get('context_length', '')}")


@main.command()
@click.argument("prompt")
@click.option("-m", "--model", help="Model id (default: the server's first model).")
@click.option("-s", "--system", help="A system prompt.")
@click.option("--max-tokens", type=int, help="Longest answer, in tokens.")
@click.option("--temperature", type=float, help="Sampling temperature.")
@url_option
@key_option
def chat(
    prompt: str,
    model: str | None,
    system: str | None,
    max_tokens: int | None,
    temperature: float | None,
    url: str,
    key: str | None,
) -> None:
    """Stream an answer to PROMPT from a running server to the terminal."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    citations: list[dict[str, Any]] = []  # a layer's sources, from the stream's first chunk
    with _client(url, key) as client:
        try:
            model = model or _check(client.get("/v1/models"))["data"][0]["id"]
            body = {"model": model, "messages": messages, "stream": True}
            if max_tokens is not None:
                body["max_tokens"] = max_tokens
            if temperature is not None:
                body["temperature"] = temperature
            with client.stream("POST", "/v1/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    _check(response)
                for line in response.iter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    event = orjson.loads(line[6:])
                    if "error" in event:
                        raise click.ClickException(event["error"]["message"])
                    citations += event.get("citations", [])
                    for choice in event["choices"]:
                        sys.stdout.write(choice["delta"].get("content") or "")
                        sys.stdout.flush()
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach {url}: {exc}") from None
    sys.stdout.write("\n")
    sys.stdout.flush()
    for c in citations:  # after the answer that may cite them
        where = " — ".join(x for x in (c.get("title", ""), c.get("section", "")) if x)
        click.echo(f"[{c['index']}] {where} ({c['source']})", err=True)


# Registered last: these commands live in a module of their own, which imports this one.
from .cli_billing import credits_group, report, usage  # noqa: E402
from .cli_members import members  # noqa: E402
from .cli_plans import plans, prices  # noqa: E402

main.add_command(usage)
main.add_command(credits_group)
main.add_command(report)
main.add_command(members)
main.add_command(plans)
main.add_command(prices)

from .cli_codes import codes  # noqa: E402

main.add_command(codes)

from .cli_statements import export_command, statement  # noqa: E402

main.add_command(statement)
main.add_command(export_command)

from .cli_watermark import watermark  # noqa: E402

main.add_command(watermark)

from .cli_audit import audit  # noqa: E402

main.add_command(audit)

from .cli_compliance import compliance  # noqa: E402

main.add_command(compliance)

from .cli_knowledge import knowledge  # noqa: E402
from .cli_review import review  # noqa: E402
from .cli_routing import routing  # noqa: E402

main.add_command(review)
main.add_command(knowledge)
main.add_command(routing)
