"""What a plan lets an organisation's keys do, and the plans ModelGrid has built in."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .labels import label_problem
from .review.config import DEFAULT_REFUSAL

SIX_MONTHS_DAYS = 183


class PlanSettings(BaseModel):
    """What an organisation's keys may do. More limits and quotas join as they are enforced."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(default_factory=lambda: ["*"])  # model ids; "*": every model
    requests_per_minute: int = Field(0, ge=0)  # per organisation (or lone key); 0: no limit
    max_concurrency: int = Field(0, ge=0)  # requests in flight at once, likewise; 0: no limit
    # Tokens per minute, likewise, counted at admission as OpenAI does: the prompt plus the
    # most the completion may take (max_tokens, or what the context leaves); 0: no limit.
    tokens_per_minute: int = Field(0, ge=0)
    # Queue priority on the embedded engines: waiting requests of a higher one go first.
    priority: int = Field(0, ge=0, le=100)
    # The explicit label on generated text (GB 45438-2025): its wording (an AI element and a
    # generation element) and where it goes. "none" only where the plan's agreement moves the
    # labelling duty to the user (label_duty = "user"), and then logs are kept six months.
    label_text: str = "本内容由人工智能生成"
    label_position: Literal["start", "end", "none"] = "end"
    label_duty: Literal["operator", "user"] = "operator"
    # The safety review's policy ([review.policies], or the built-in default, strict, off),
    # and what a refused request or answer says instead, as a normal completion.
    review_policy: str = "default"
    refusal_text: str = Field(DEFAULT_REFUSAL, min_length=1)
    # The operator's watermark in tokens the embedded engines generate for this plan.
    watermark: bool = True
    # Keep each response's conversation (for `modelgrid export CONTENT_ID` and provenance
    # look-ups by similarity); off, only the audit log's digests of it remain.
    keep_text: bool = True
    # Quotas per organisation (or lone key), per UTC day and calendar month: prompt and
    # completion tokens together; 0: no quota.
    daily_tokens: int = Field(0, ge=0)
    monthly_tokens: int = Field(0, ge=0)
    quota_models: list[str] = Field(default_factory=lambda: ["*"])  # the models quotas cover
    # A model id: a request the token quotas refuse goes to it instead (and says so in the
    # header x-modelgrid-degraded), typically a small model that quota_models leaves out.
    degrade_to: str = ""
    # Requests are charged to the organisation's credits at the models' prices times the
    # multiplier, and refused once the credits cannot cover what a request may cost.
    billed: bool = False
    price_multiplier: float = Field(1.0, ge=0)
    monthly_credits: float = Field(0.0, ge=0)  # the most charged per month; 0: no budget
    # The most tokens a completion may take on this plan (also what a reservation assumes when
    # the caller sets no max_tokens); 0: what the model's context leaves.
    max_tokens: int = Field(0, ge=0)
    # Days the raw ledger entries of this plan's requests and organisations are kept (for
    # compliance); the longer of this and ledger_retention_days wins. 0: the global setting.
    retention_days: int = Field(0, ge=0)

    def allows(self, model_id: str) -> bool:
        return "*" in self.models or model_id in self.models

    @model_validator(mode="after")
    def _label_policy(self) -> PlanSettings:
        if self.label_position == "none":
            if self.label_duty != "user":
                raise ValueError(
                    "label_position none needs label_duty user: only an agreement that moves "
                    "the labelling duty to the user allows unlabelled output"
                )
        elif (problem := label_problem(self.label_text)) is not None:
            raise ValueError(f"label_text: {problem}")
        return self

    def quota_covers(self, model_id: str) -> bool:
        return "*" in self.quota_models or model_id in self.quota_models

    @property
    def counts(self) -> bool:
        """Whether it keeps counters that several processes would each keep on their own."""
        return bool(
            self.requests_per_minute
            or self.max_concurrency
            or self.tokens_per_minute
            or self.daily_tokens
            or self.monthly_tokens
            or self.billed
        )


# The built-in plans; an operator's [plans.<name>] table of the same name replaces one.
# The free tier's rate is OpenRouter's for its free models.
BUILTIN_PLANS = {
    "free": PlanSettings(
        requests_per_minute=20,
        max_concurrency=2,
        tokens_per_minute=40_000,
        daily_tokens=200_000,
        monthly_tokens=2_000_000,
        max_tokens=4096,
    ),
    "pro": PlanSettings(
        requests_per_minute=600,
        max_concurrency=32,
        tokens_per_minute=2_000_000,
        priority=1,
        billed=True,
    ),
    "enterprise": PlanSettings(priority=2, billed=True),
}
