"""The safety review's settings: the term lists, the named policies, the optional guard model.

A policy says, per TC260-003 class or risk, what a listed term's hit does (allow, flag or
refuse), and per stage what personal information does (allow, flag, mask or refuse). Plans name
one (``review_policy``), and so may models; a request under both gets the stricter action of the
two for every risk, since neither the plan's owner nor the model's may weaken the other's rules.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .taxonomy import CLASSES, is_risk_code

RiskAction = Literal["allow", "flag", "refuse"]
PiiAction = Literal["allow", "flag", "mask", "refuse"]

SAMPLE_TERMS = "sample"  # in ``terms``: the small list ModelGrid ships, for trying it out
DEFAULT_REFUSAL = "抱歉，我无法提供这方面的内容。Sorry, I can't help with that."


_DEFAULT_RISKS: dict[str, RiskAction] = {
    "A.1": "refuse",
    "A.2": "refuse",
    "A.3": "flag",
    "A.4": "flag",
    "A.5": "flag",
}


class PolicySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Class ("A.1") or risk ("A.1.4") codes of TC260-003; a risk's entry beats its class's.
    # By default the illegal and discriminatory content of A.1 and A.2 is refused, and the
    # rest (commercial wrongs, others' rights, special services) is let through and queued
    # for a person to look at, since a keyword alone often catches questions about them.
    risks: dict[str, RiskAction] = Field(default_factory=lambda: dict(_DEFAULT_RISKS))
    default_risk: RiskAction = "refuse"  # a listed term whose risk the table leaves out
    # Personal information: people share their own in prompts; answers must not spread it.
    input_pii: PiiAction = "allow"
    output_pii: PiiAction = "mask"
    input: bool = True  # review prompts before generation
    output: bool = True  # review answers as they stream

    @field_validator("risks")
    @classmethod
    def _known_codes(cls, value: dict[str, str]) -> dict[str, str]:
        classes = {c.code for c in CLASSES}
        for code in value:
            if code not in classes and not is_risk_code(code):
                raise ValueError(f"unknown TC260-003 class or risk {code!r}")
        return value


BUILTIN_POLICIES = {
    "default": PolicySettings(),
    "strict": PolicySettings(
        risks={c.code: "refuse" for c in CLASSES}, input_pii="mask", output_pii="mask"
    ),
    "off": PolicySettings(input=False, output=False),
}


class GuardSettings(BaseModel):
    """A guard model (Llama Guard, Qwen3Guard, ...): a model of the catalogue, asked about each
    prompt after the term lists, and about each answer; off while ``model`` is empty."""

    model_config = ConfigDict(extra="forbid")

    model: str = ""  # a [models.*] id; its deployments say where it runs
    answers: bool = True  # ask about answers too, not only prompts
    timeout: float = Field(5.0, gt=0)
    # What the guard's own category names or codes (S1..S14 for Llama Guard 3, Qwen3Guard's
    # names) map to in TC260-003; unmapped unsafe answers count as the catch-all A.1.8.
    categories: dict[str, str] = Field(default_factory=dict)
    fail_open: bool = True  # a guard that cannot be reached lets the request through

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        if isinstance(data, dict) and {"base_url", "api_key_env"} & set(data):
            raise ValueError(
                "review.guard.base_url and api_key_env are now a model's: declare the guard "
                'as [models.<id>] with an engine = "openai" deployment and set '
                "review.guard.model to that id"
            )
        return data

    @field_validator("categories")
    @classmethod
    def _known_risks(cls, value: dict[str, str]) -> dict[str, str]:
        for name, code in value.items():
            if not is_risk_code(code):
                raise ValueError(f"{name}: unknown TC260-003 risk {code!r}")
        return value


class ReviewSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # Term lists: plain text (term, a tab, a risk code; '#' comments) or CSV with a
    # "term,risk" header. "sample" is ModelGrid's own small list.
    terms: list[str] = Field(default_factory=lambda: [SAMPLE_TERMS])
    reload_seconds: float = Field(5.0, ge=0)  # how often changed lists are re-read; 0: never
    policies: dict[str, PolicySettings] = Field(default_factory=dict)  # over the built-in ones
    guard: GuardSettings = Field(default_factory=GuardSettings)

    @property
    def all_policies(self) -> dict[str, PolicySettings]:
        return BUILTIN_POLICIES | self.policies
