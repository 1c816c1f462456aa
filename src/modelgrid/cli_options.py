"""What every ``modelgrid`` command that reads the config shares."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from .settings import Settings, SettingsError, load_settings
from .storage.database import Database
from .storage.orgs import Organisation, OrgStore

T = TypeVar("T")


def parse_when(text: str | None, option: str) -> datetime | None:
    """An option's ISO 8601 date or time, UTC unless it says; None when not given."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise click.ClickException(f"{option} {text!r}: use an ISO date, e.g. 2026-11-01") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _settings(config: str | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, overrides=overrides)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False, exists=True),
    help="TOML config file (default: $MODELGRID_CONFIG, else built-in defaults).",
)


def run_for_org(
    config: str | None,
    org_name: str,
    action: Callable[[Database, Organisation, Settings], Awaitable[T]],
) -> T:
    """Run ``action(db, org, settings)`` for the organisation called ``org_name``, on the
    configured database (migrated first)."""
    settings = _settings(config)

    async def run() -> T:
        db = Database(settings.resolved_database_url)
        try:
            await db.migrate()
            org = await OrgStore(db).get(org_name)
            if org is None:
                raise click.ClickException(f"no organisation {org_name!r}")
            return await action(db, org, settings)
        finally:
            await db.close()

    return asyncio.run(run())
