"""A layer of the catalogue as configured: a model built on another (a base model, or a layer),
with its own instructions, review, prices, adapter and audience."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .price_settings import PriceSettings


class LayerSettings(BaseModel):
    """``[layers."base/finance"]``: the table's name is the model name callers use."""

    model_config = ConfigDict(extra="forbid")

    # The model or layer this one is built on; empty: the name up to its last '/'
    # ("base/finance/acme" is built on "base/finance").
    parent: str = ""
    # Said to the model before the caller's messages, after the parent's (unless replaced).
    system_prompt: str = ""
    replace_prompt: bool = False  # true: the parent's prompts are not said at all
    # A review policy of the layer's own, applied with its parents' and the plan's: the
    # strictest rule of them all wins, so a layer can tighten what it inherits, never loosen.
    review_policy: str = ""
    prices: PriceSettings | None = None  # None: the parent's
    # The adapter that makes this layer's model: on an upstream engine (vLLM, SGLang) the
    # upstream's name for it, sent as the request's ``model``; empty: the parent's.
    adapter: str = ""
    # Who sees it (in /v1/models) and may call it; to everyone else it does not exist.
    visibility: Literal["everyone", "plans", "org"] = "everyone"
    plans: list[str] = Field(default_factory=list)  # for visibility = "plans"
    org: str = ""  # for visibility = "org": the organisation's name or id
    owned_by: str = ""  # in /v1/models; empty: the organisation's name, or the parent's
    # Passages of its knowledge (and its parents') put in front of each prompt; 0: none.
    knowledge_top_k: int = Field(4, ge=0, le=20)

    @model_validator(mode="after")
    def _audience_named(self) -> LayerSettings:
        if self.visibility == "plans" and not self.plans:
            raise ValueError('visibility = "plans" needs the plans that see the layer')
        if self.visibility == "org" and not self.org:
            raise ValueError('visibility = "org" needs the organisation (org = "...")')
        return self


class KnowledgeSettings(BaseModel):
    """``[knowledge]``: how layers' documents are found."""

    model_config = ConfigDict(extra="forbid")

    # A model of [models] whose engine makes embeddings (the embedded engine, or an upstream
    # serving /v1/embeddings): passages are embedded with it when added, and retrieval fuses
    # their similarity to the question with BM25's ranking. Empty: BM25 alone.
    embedding_model: str = ""
    candidates: int = Field(50, ge=1, le=1000)  # from each ranking, before they are fused
