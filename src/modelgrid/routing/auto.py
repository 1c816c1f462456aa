"""``auto``: a model name that a router resolves, per request, to a small model or a large one
(route before generating: the router reads the prompt). The decision is pure; the gateway
serves the chosen model as if it had been asked for, and says which in ``x-modelgrid-route``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .router import Router, RouterError


class AutoSettings(BaseModel):
    """``[auto.<name>]``: the two models, and the router that picks between them."""

    model_config = ConfigDict(extra="forbid")

    small: str
    large: str
    router: str  # a file from `modelgrid routing train --inputs prompt`
    # The target: at most this share of requests goes to the large model, on traffic like
    # the router's training data (its held-out scores set the threshold).
    max_large_share: float = Field(0.25, ge=0, le=1)


@dataclass(frozen=True, slots=True)
class Route:
    model: str
    score: float
    threshold: float

    def header(self, name: str) -> bytes:
        return f"{name} -> {self.model} (score {self.score:.3f}, threshold {self.threshold:.3f})".encode()


@dataclass(frozen=True, slots=True)
class Auto:
    name: str
    small: str
    large: str
    router: Router
    threshold: float

    @classmethod
    def load(cls, name: str, settings: AutoSettings) -> Auto:
        router = Router.load(Path(settings.router))
        if router.inputs != "prompt":
            raise RouterError(
                f"auto.{name}.router: a router that reads answers is a cascade's; routing "
                "before generating needs one trained with --inputs prompt"
            )
        return cls(
            name,
            settings.small,
            settings.large,
            router,
            router.threshold_for(settings.max_large_share),
        )

    def route(self, prompt: str) -> Route:
        score = self.router.score(prompt)
        model = self.large if score >= self.threshold else self.small
        return Route(model, score, self.threshold)
