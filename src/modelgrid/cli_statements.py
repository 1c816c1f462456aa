"""``modelgrid statement`` and ``modelgrid export``: a month's statement, and an organisation's
usage as CSV or JSON or one stored conversation as Markdown, read from the database directly
like ``modelgrid usage``."""

from __future__ import annotations

import asyncio
from typing import cast

import click
import orjson
from click.core import ParameterSource

from .accounts import account_of_org
from .cli_billing import _run, _since
from .cli_options import _settings, config_option, parse_when
from .settings import Settings
from .statements import Statement, as_json, collect, month_bounds, render
from .storage.contents import ContentStore
from .storage.database import Database
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


# The usage export's own options: given with a CONTENT_ID, they are a mistake worth naming.
_USAGE_OPTIONS = {
    "org_name": "--org",
    "since": "--since",
    "until": "--until",
    "fmt": "--format",
    "granularity": "--granularity",
}


@click.command(name="export")
@config_option
@click.argument("content_id", required=False)
@click.option("--org", "org_name", help="The organisation whose usage to export.")
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
    content_id: str | None,
    org_name: str | None,
    since: str | None,
    until: str | None,
    fmt: str,
    granularity: str,
    output: str | None,
) -> None:
    """An organisation's usage as CSV (with a header row) or JSON (a list); or, given
    CONTENT_ID, that response's conversation as Markdown, its AIGC metadata in the front
    matter and its explicit label as served."""
    if content_id is not None:
        context = click.get_current_context()
        given = [
            flag
            for name, flag in _USAGE_OPTIONS.items()
            if context.get_parameter_source(name)
            in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
        ]
        if given:
            raise click.UsageError(f"{', '.join(given)}: usage export only, not with CONTENT_ID")
        _export_conversation(config, content_id, output)
        return
    if org_name is None:
        raise click.UsageError("give a CONTENT_ID (a conversation) or --org ORG (usage)")
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


def _export_conversation(config: str | None, content_id: str, output: str | None) -> None:
    from .conversation_export import render_markdown

    settings = _settings(config)

    async def find() -> str | None:
        db = Database(settings.resolved_database_url)
        try:
            await db.migrate()
            # Reads only: journaling and flushing belong to the server.
            found = await ContentStore(db, settings.data_dir / "journal").get(content_id)
            return None if found is None else render_markdown(found)
        finally:
            await db.close()

    markdown = asyncio.run(find())
    if markdown is None:
        raise click.ClickException(f"no stored conversation {content_id!r}")
    with click.open_file(output or "-", "w", encoding="utf-8") as out:
        out.write(markdown)
