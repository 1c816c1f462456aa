"""``auto``: a model name that resolves, per request, to a small model or a large one. The
decisions are pure; the gateway and the cascade (cascade.py) carry them out, and the response
says which model answered and why in ``x-modelgrid-route``.

Three policies:

- ``route``: a router reads the prompt before anything is generated;
- ``cascade``: the small model answers first; a confidence signal (a verifier router that
  reads the prompt and the answer, the answer's token probabilities, or the agreement of
  several samples) keeps it, or the large model answers instead;
- ``refine``: as ``cascade``, but where the large model steps in it is shown the small
  model's draft and asked to improve it.

Each has a target: the largest share of large-model calls (a router's held-out scores set
its threshold), or the lowest confidence to keep the small model's answer; a plan may set
its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .confidence import agreement, sampled, samples_needed, settled, token_confidence
from .router import Router, RouterError

Policy = Literal["route", "cascade", "refine"]
Signal = Literal["verifier", "logprob", "agreement"]


class AutoTarget(BaseModel):
    """``[auto.<name>.plans.<plan>]``: a plan's own target (unset: the auto's)."""

    model_config = ConfigDict(extra="forbid")

    max_large_share: float | None = Field(None, ge=0, le=1)
    min_confidence: float | None = Field(None, ge=0, le=1)


class AutoSettings(BaseModel):
    """``[auto.<name>]``: the two models, the policy between them, and its target."""

    model_config = ConfigDict(extra="forbid")

    small: str
    large: str
    policy: Policy = "route"
    # What a cascade (or refine) judges the small model's answer by.
    signal: Signal = "verifier"
    # A file from `modelgrid routing train`: `--inputs prompt` to route, `--inputs answer`
    # for a cascade's verifier.
    router: str = ""
    # The target for a router: at most this share of requests goes to the large model, on
    # traffic like the router's training data (its held-out scores set the threshold).
    max_large_share: float = Field(0.25, ge=0, le=1)
    # The target for the other signals: the small model's answer is kept when the mean
    # probability of its tokens (logprob), or the share of samples agreeing with it
    # (agreement), is at least this.
    min_confidence: float = Field(0.5, ge=0, le=1)
    samples: int = Field(3, ge=2, le=8)  # agreement: the most samples drawn
    # Shadow evaluation: this share of requests also runs on the other model, off the
    # caller's path and bill, and the two answers are kept as training data.
    shadow_share: float = Field(0.0, ge=0, le=1)
    # The catalogue model that judges shadow pairs no reference answer settles ("": none).
    judge: str = ""
    plans: dict[str, AutoTarget] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _router_when_needed(self) -> AutoSettings:
        if self.uses_router and not self.router:
            raise ValueError(
                "router: a file from `modelgrid routing train` is needed for policy 'route' "
                "and for signal 'verifier'"
            )
        return self

    @property
    def uses_router(self) -> bool:
        return self.policy == "route" or self.signal == "verifier"


@dataclass(frozen=True, slots=True)
class Route:
    model: str
    score: float
    threshold: float
    how: str = ""  # the signal, for a cascade's decision
    escalated: bool = False

    def header(self, name: str) -> bytes:
        if not self.how:
            text = (
                f"{name} -> {self.model} (score {self.score:.3f}, threshold {self.threshold:.3f})"
            )
        else:
            step = "escalated" if self.escalated else "kept"
            text = (
                f"{name} -> {self.model} ({step}: {self.how} {self.score:.3f}, "
                f"threshold {self.threshold:.3f})"
            )
        return text.encode()


@dataclass(frozen=True, slots=True)
class Auto:
    name: str
    small: str
    large: str
    router: Router | None
    threshold: float  # the auto's own target, as the signal's threshold
    policy: Policy = "route"
    signal: Signal = "verifier"
    samples: int = 3
    shadow_share: float = 0.0
    judge: str = ""
    plan_thresholds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, name: str, settings: AutoSettings) -> Auto:
        router = Router.load(Path(settings.router)) if settings.uses_router else None
        wanted = "prompt" if settings.policy == "route" else "answer"
        if router is not None and router.inputs != wanted:
            raise RouterError(
                f"auto.{name}.router: policy {settings.policy!r} needs a router trained with "
                f"--inputs {wanted}, and this one reads the {router.inputs}"
            )

        def threshold(share: float, confidence: float) -> float:
            if router is not None:
                return router.threshold_for(share)
            if settings.signal == "agreement":
                return samples_needed(settings.samples, confidence) / settings.samples
            return confidence

        return cls(
            name,
            settings.small,
            settings.large,
            router,
            threshold(settings.max_large_share, settings.min_confidence),
            settings.policy,
            settings.signal,
            settings.samples,
            settings.shadow_share,
            settings.judge,
            {
                plan: threshold(
                    settings.max_large_share if t.max_large_share is None else t.max_large_share,
                    settings.min_confidence if t.min_confidence is None else t.min_confidence,
                )
                for plan, t in settings.plans.items()
            },
        )

    def shadows(self, uid: str) -> bool:
        """Whether the request with this id is shadow-evaluated."""
        return self.shadow_share > 0 and sampled(uid, self.shadow_share)

    @property
    def cascades(self) -> bool:
        return self.policy != "route"

    def threshold_for(self, plan: str | None) -> float:
        return self.plan_thresholds.get(plan or "", self.threshold)

    def route(self, prompt: str, plan: str | None = None) -> Route:
        """Route before generating: the router's score of the prompt."""
        assert self.router is not None
        score, threshold = self.router.score(prompt), self.threshold_for(plan)
        return Route(self.large if score >= threshold else self.small, score, threshold)

    def verify(self, prompt: str, answer: str, plan: str | None = None) -> Route:
        """A cascade's verifier: how likely the large model does better than ``answer``."""
        assert self.router is not None
        score, threshold = self.router.score(f"{prompt}\n\n{answer}"), self.threshold_for(plan)
        escalate = score >= threshold
        return Route(self.large if escalate else self.small, score, threshold, "verifier", escalate)

    def trust(self, logprobs: Sequence[float], plan: str | None = None) -> Route:
        """A cascade's log-probability signal: the answer's mean token probability."""
        score, threshold = token_confidence(logprobs), self.threshold_for(plan)
        escalate = score < threshold
        return Route(self.large if escalate else self.small, score, threshold, "logprob", escalate)

    def needed(self, plan: str | None = None) -> int:
        """Agreement: how many of the samples must agree to keep the small model."""
        return samples_needed(self.samples, self.threshold_for(plan))

    def agree(self, keys: Sequence[str], plan: str | None = None) -> Route | None:
        """Agreement of the samples so far: a decision once early stopping allows one."""
        done = settled(keys, self.samples, self.needed(plan))
        if done is None:
            return None
        score = agreement(keys)[1] / len(keys)
        model = self.small if done else self.large
        return Route(model, score, self.threshold_for(plan), "agreement", not done)
