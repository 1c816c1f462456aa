"""What every ``modelgrid`` command that reads the config shares."""

from __future__ import annotations

from typing import Any

import click

from .settings import Settings, SettingsError, load_settings


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
