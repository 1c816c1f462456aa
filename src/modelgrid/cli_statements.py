"""``modelgrid statement`` and ``modelgrid export``: a month's statement and an organisation's
usage as CSV or JSON, read from the database directly like ``modelgrid usage``."""

from __future__ import annotations

from typing import cast

import click
import orjson

from .accounts import account_of_org
from .cli_billing import _run, _since
from .cli_options import config_option, parse_when
from .settings import Settings
from .statements import Statement, as_json, collect, month_bounds, render
from .storage.ledger import Ledger
from .storage.orgs import Organisation
from .usage_export import FORMATS, GRANULARITIES, Format, Granularity, export


@click.command()
@config_option
@click.option("--org", "org_name", required=True, help="The organisation.")
@click.option("--month", required=True, help="The calendar month (UTC), YYYY-MM.")
@click.option("--json", "as_json_flag", is_flag=True, help="One JSON object.")
def statement(config: str | None, org_name: str, month: str, as_json_flag: bool) -> None:
    """A month's statement: opening balance, credits granted by kind, charges per model,
    closing balance."""
    try:
        month_bounds(month)
    except ValueError as exc:
        raise click.ClickException(f"--month: {exc}") from None

    async def action(
        ledger: Ledger, org: Organisation, settings: Settings
    ) -> tuple[Statement, Organisation]:
        return await collect(ledger.db, account_of_org(org.id), month), org

    found, org = _run(config, org_name, action)
    if as_json_flag:
        click.echo(orjson.dumps(as_json(found, org.name, org.plan)).decode())
    else:
        click.echo(render(found, org.name, org.plan))


@click.command(name="export")
@config_option
@click.option("--org", "org_name", required=True, help="The organisation.")
@click.option("--since", help="ISO date or time (UTC); default: the start of this month.")
@click.option("--until", help="ISO date or time (UTC), exclusive; default: none.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True)
@click.option(
    "--granularity",
    type=click.Choice(GRANULARITIES),
    default="entry",
    show_default=True,
    help="Every ledger entry, or sums per hour, model and plan.",
)
@click.option("--output", type=click.Path(dir_okay=False), help="A file (default: stdout).")
def export_command(
    config: str | None,
    org_name: str,
    since: str | None,
    until: str | None,
    fmt: str,
    granularity: str,
    output: str | None,
) -> None:
    """An organisation's usage as CSV (with a header row) or JSON (a list)."""
    start, end = _since(since), parse_when(until, "--until")

    async def action(ledger: Ledger, org: Organisation, settings: Settings) -> None:
        chunks = export(
            ledger,
            account_of_org(org.id),
            start,
            end,
            cast(Format, fmt),
            cast(Granularity, granularity),
        )
        with click.open_file(output or "-", "w", encoding="utf-8") as out:
            async for chunk in chunks:
                out.write(chunk)

    _run(config, org_name, action)
