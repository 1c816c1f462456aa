"""``modelgrid usage``, ``modelgrid credits`` and ``modelgrid report``: read and grant on the
database directly, as ``keys`` and ``orgs`` do, so they work whether or not a server runs (a
running server sees a grant within a second)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click
import orjson

from .accounts import account_of_org
from .cli_options import _settings, config_option, parse_when, run_for_org
from .pricing import credits, micro
from .settings import Settings
from .storage.database import Database
from .storage.ledger import Ledger
from .storage.orgs import Organisation
from .usage_card import usage_card

T = TypeVar("T")


def _run(config: str | None, org_name: str, action: Callable[..., Awaitable[T]]) -> T:
    """Run ``action(ledger, org, settings)`` for the organisation called ``org_name``."""

    async def with_ledger(db: Database, org: Organisation, settings: Settings) -> T:
        # Queries and grants only: journaling and flushing belong to the server.
        return await action(Ledger(db, settings.data_dir / "journal"), org, settings)

    return run_for_org(config, org_name, with_ledger)


def _since(text: str | None) -> datetime:
    """``--since``; default: the start of this month."""
    when = parse_when(text, "--since")
    return when or datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@click.command()
@config_option
@click.option("--org", "org_name", required=True, help="The organisation.")
@click.option("--since", help="ISO date or time (UTC); default: the start of this month.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def usage(config: str | None, org_name: str, since: str | None, as_json: bool) -> None:
    """An organisation's requests, tokens and charges since a date, and its credits left."""
    start = _since(since)

    async def action(ledger: Ledger, org: Organisation, settings: Settings) -> dict[str, Any]:
        return await usage_card(ledger, org, start)

    found = _run(config, org_name, action)
    if as_json:
        click.echo(orjson.dumps(found).decode())
        return
    click.echo(f"{found['org']} ({found['plan']} plan) since {found['since']}:")
    click.echo(f"  requests    {found['requests']}")
    click.echo(f"  tokens in   {found['tokens_in']} ({found['tokens_cached']} cached)")
    click.echo(f"  tokens out  {found['tokens_out']}")
    click.echo(f"  list price  {found['list_price']:.6f} credits")
    click.echo(f"  charged     {found['charged']:.6f} credits")
    click.echo(f"  balance     {found['balance']:.6f} credits")


@click.group(name="credits")
def credits_group() -> None:
    """Credits: what billed plans spend."""


@credits_group.command("add")
@config_option
@click.option("--org", "org_name", required=True, help="The organisation.")
@click.option("--note", default="", help="Why (kept with the grant).")
@click.argument("amount", type=float)
def credits_add(config: str | None, org_name: str, note: str, amount: float) -> None:
    """Grant AMOUNT credits (negative: a correction; never below a zero balance)."""
    if micro(amount) == 0:
        raise click.ClickException("AMOUNT must not be zero")

    async def action(ledger: Ledger, org: Organisation, settings: Settings) -> float:
        account = account_of_org(org.id)
        balance = await ledger.granted(account) - await ledger.spent(account)
        if balance + micro(amount) < 0:
            raise click.ClickException(f"that would leave {org.name} a negative balance")
        kind = "topup" if amount > 0 else "adjustment"
        await ledger.grant(account, micro(amount), kind, note)
        return credits(balance + micro(amount))

    balance = _run(config, org_name, action)
    click.echo(f"{org_name} has {balance:.6f} credits.")


@click.group()
def report() -> None:
    """Reports over the ledger."""


@report.command("margin")
@config_option
@click.option("--day", help="The UTC day, YYYY-MM-DD (default: today).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def report_margin(config: str | None, day: str | None, as_json: bool) -> None:
    """A day's tokens, revenue (theoretical and actual), cost and margin, per model."""
    from .report import margin, render

    start = (parse_when(day, "--day") or datetime.now(UTC)).replace(
        hour=0, minute=0, second=0, microsecond=0, tzinfo=UTC
    )
    settings = _settings(config)

    async def run() -> dict[str, Any]:
        db = Database(settings.resolved_database_url)
        try:
            await db.migrate()
            ledger, end = Ledger(db, settings.data_dir / "journal"), start + timedelta(days=1)
            per_model, per_route = (
                await ledger.by_model(start, end),
                await ledger.by_route(start, end),
            )
            return margin(start.date().isoformat(), per_model, per_route)
        finally:
            await db.close()

    found = asyncio.run(run())
    click.echo(orjson.dumps(found).decode() if as_json else render(found))
