"""``modelgrid codes``: make, list and redeem redemption codes on the database directly, as
``keys`` and ``credits`` do, so they work whether or not a server runs (a running server counts
a redemption within a second)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
import orjson

from .accounts import account_of_org
from .cli_options import _settings, config_option
from .pricing import credits, micro
from .storage.codes import MAX_COUNT, CodeRejected, CodeStore
from .storage.database import Database
from .storage.ledger import Ledger
from .storage.orgs import OrgStore

T = TypeVar("T")


def _run(config: str | None, action: Callable[[CodeStore, OrgStore, Ledger], Awaitable[T]]) -> T:
    settings = _settings(config)

    async def run() -> T:
        db = Database(settings.resolved_database_url)
        try:
            await db.migrate()
            # Queries only: journaling and flushing belong to the server.
            ledger = Ledger(db, settings.data_dir / "journal")
            return await action(CodeStore(db), OrgStore(db), ledger)
        finally:
            await db.close()

    return asyncio.run(run())


@click.group()
def codes() -> None:
    """Redemption codes: single use, worth credits, optionally expiring."""


@codes.command("create")
@config_option
@click.option(
    "--amount",
    type=click.FloatRange(0, 1_000_000, min_open=True),
    required=True,
    help="Credits each code is worth.",
)
@click.option(
    "--count", type=click.IntRange(1, MAX_COUNT), default=1, show_default=True, help="Codes."
)
@click.option("--expires", help="Lifetime (30d, 12h, 90m) or an ISO date; default: never.")
@click.option("--note", default="", help="Why (kept with the codes).")
def codes_create(
    config: str | None, amount: float, count: int, expires: str | None, note: str
) -> None:
    """Create codes and print them alone on stdout, one a line; they are never shown again."""
    # Imported here: cli.py imports this module as it finishes loading.
    from .cli import _expiry

    if micro(amount) <= 0:
        raise click.ClickException("--amount must be at least 0.000001")
    if len(note) > 200:
        raise click.ClickException("--note: at most 200 characters")
    expires_at = _expiry(expires) if expires else None

    async def action(store: CodeStore, orgs: OrgStore, ledger: Ledger) -> list[str]:
        return await store.create(micro(amount), count, expires_at, note)

    made = _run(config, action)
    click.echo(
        f"Created {count} code{'s' if count > 1 else ''} worth {amount:g} credits each; "
        "store them now, they are shown once.",
        err=True,
    )
    for code in made:
        click.echo(code)


@codes.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON list.")
def codes_list(config: str | None, as_json: bool) -> None:
    """List codes by prefix (codes themselves are stored only as hashes)."""
    from .admin_codes import code_card, org_names

    async def action(store: CodeStore, orgs: OrgStore, ledger: Ledger) -> list[dict[str, Any]]:
        names = org_names(await orgs.list_all())
        now = datetime.now(UTC)
        return [code_card(record, now, names) for record in await store.list_all()]

    cards = _run(config, action)
    if as_json:
        click.echo(orjson.dumps(cards).decode())
        return
    click.echo(f"{'PREFIX':12}  {'CREDITS':>12}  {'STATUS':8}  {'EXPIRES':19}  {'ORG':16}  NOTE")
    for c in cards:
        expires = str(c["expires_at"] or "-")[:19].replace("T", " ")
        org = c["org"] or c["redeemed_by"] or "-"
        click.echo(
            f"{c['prefix']:12}  {c['amount']:>12.6f}  {c['status']:8}  {expires:19}  "
            f"{org:16}  {c['note']}"
        )


@codes.command("redeem")
@config_option
@click.option("--org", "org_name", required=True, help="The organisation credited.")
@click.argument("code")
def codes_redeem(config: str | None, org_name: str, code: str) -> None:
    """Redeem CODE for an organisation: its credits are granted once, and the code is spent."""

    async def action(store: CodeStore, orgs: OrgStore, ledger: Ledger) -> tuple[int, int]:
        org = await orgs.get(org_name)
        if org is None:
            raise click.ClickException(f"no organisation {org_name!r}")
        account = account_of_org(org.id)
        try:
            amount = await store.redeem(code, account)
        except CodeRejected as exc:
            raise click.ClickException(f"code {exc.reason}") from None
        return amount, await ledger.granted(account) - await ledger.spent(account)

    amount, balance = _run(config, action)
    click.echo(
        f"{org_name} received {credits(amount):g} credits and has {credits(balance):.6f} credits."
    )
