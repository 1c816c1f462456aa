"""``modelgrid audit``: verify the audit log and print receipts, on the database directly, as
``keys`` and ``credits`` do, with the audit keys from the data directory."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click
import orjson
import sqlalchemy as sa

from .audit.keys import AuditKeys
from .audit.store import DEFAULT_ORIGIN, AuditLog
from .audit.verify import verify_log
from .cli_options import _settings, config_option
from .storage.database import Database
from .storage.tables import audit_checkpoints

T = TypeVar("T")

origin_option = click.option(
    "--origin", help="The log's origin, which its key signs as (default: the newest checkpoint's)."
)


def _run(config: str | None, action: Callable[[AuditLog], Awaitable[T]]) -> T:
    settings = _settings(config)
    try:
        keys = AuditKeys.load(settings.data_dir)
    except FileNotFoundError:
        raise click.ClickException(
            f"no audit keys in {settings.data_dir}: the server makes them on its first start"
        ) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None

    async def run() -> T:
        db = Database(settings.resolved_database_url)
        try:
            await db.migrate()
            # Queries only: journaling and flushing belong to the server.
            return await action(AuditLog(db, settings.data_dir / "audit-journal", keys))
        finally:
            await db.close()

    return asyncio.run(run())


async def _origin(log: AuditLog, given: str | None) -> str:
    """The origin the log's checkpoints name: a note's first line."""
    if given:
        return given
    c = audit_checkpoints.c
    query = sa.select(c.note).order_by(c.tree_size.desc()).limit(1)
    async with log.db.engine.connect() as conn:
        note = (await conn.execute(query)).scalar_one_or_none()
    return DEFAULT_ORIGIN if note is None else str(note).split("\n", 1)[0]


@click.group()
def audit() -> None:
    """The signed audit log: verify it whole, or print one record's receipt."""


@audit.command("verify")
@config_option
@origin_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def audit_verify(config: str | None, origin: str | None, as_json: bool) -> None:
    """Recompute the log's tree from its leaves and check every signed checkpoint against it;
    exit 1 naming the first bad leaf or checkpoint."""

    async def action(log: AuditLog) -> tuple[str, bool, dict[str, object]]:
        try:
            key = log.keys.public_key(await _origin(log, origin))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        result = await verify_log(log.db, key)
        return result.summary(), result.ok, result.to_json()

    summary, ok, found = _run(config, action)
    if as_json:
        click.echo(orjson.dumps(found).decode())
        if not ok:
            raise SystemExit(1)
        return
    if not ok:
        raise click.ClickException(summary)
    click.echo(summary)


@audit.command("proof")
@config_option
@click.argument("content_id")
def audit_proof(config: str | None, content_id: str) -> None:
    """Print CONTENT_ID's receipt as JSON: its record, inclusion proof and signed checkpoint."""

    async def action(log: AuditLog) -> dict[str, object] | None:
        receipt = await log.lookup(content_id)
        return None if receipt is None else receipt.to_json()

    found = _run(config, action)
    if found is None:
        raise click.ClickException(f"no committed audit record has the content id {content_id!r}")
    click.echo(orjson.dumps(found).decode())
