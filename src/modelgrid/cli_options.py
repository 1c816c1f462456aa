"""What every ``modelgrid`` command that reads the config shares."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
import httpx

from .settings import Settings, SettingsError, load_settings
from .storage.database import Database
from .storage.orgs import Organisation, OrgStore

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8000"


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


# Commands that talk to a running server.
url_option = click.option(
    "--url", envvar="MODELGRID_URL", default=DEFAULT_URL, show_default=True, help="Server address."
)
key_option = click.option(
    "--key",
    envvar=["MODELGRID_API_KEY", "MODELGRID_ADMIN_KEY"],
    help="API key (default: $MODELGRID_API_KEY, else $MODELGRID_ADMIN_KEY).",
)


def _client(url: str, key: str | None) -> httpx.Client:
    if not key:
        raise click.ClickException("no API key: pass --key or set MODELGRID_API_KEY")
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=None)


def _check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except Exception:
            message = response.text
        raise click.ClickException(f"{response.status_code}: {message}")
    return response.json()
