"""Plain data shared by the gateway and the engines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

FinishReason = Literal["stop", "length", "cancelled", "content_filter"]


@dataclass(frozen=True, slots=True)
class TopLogprob:
    token: str
    logprob: float
    bytes: list[int]


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    token: str
    logprob: float
    bytes: list[int]
    top: list[TopLogprob]


@dataclass(frozen=True, slots=True)
class Sampling:
    """What the caller asked for; None leaves the choice to the engine's own defaults."""

    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    presence_penalty: float
    frequency_penalty: float
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: int | None = None  # how many alternatives per token; None: no logprobs at all
    grammar: ResponseFormat | None = None


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """A constraint on the output: any JSON object, or JSON matching ``schema``."""

    kind: Literal["json_object", "json_schema"]
    schema: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Prompt:
    """A prompt after templating and tokenisation, ready for an engine's queue."""

    tokens: list[int]
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # prompt tokens an upstream served from its cache (cheaper)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.cached_tokens:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        return usage


@dataclass(slots=True)
class Piece:
    """A step of generation: text that is safe to show, and the tokens that produced it.

    The last piece may carry ``usage``, the engine's exact count for the whole generation (an
    upstream's own figures), which then replaces what the pieces added up to."""

    text: str
    tokens: int
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    deployment: str = ""  # which deployment produced it, set by the router
    first_token_at: float | None = None  # perf_counter() of the first token, when merged


def merge(pieces: list[Piece], first_token_at: float | None = None) -> Piece:
    """A whole generation as one piece: what a non-streamed answer needs."""
    last = pieces[-1]
    return Piece(
        text="".join(p.text for p in pieces),
        tokens=sum(p.tokens for p in pieces),
        logprobs=[lp for p in pieces for lp in p.logprobs],
        finish_reason=last.finish_reason,
        usage=last.usage,
        deployment=last.deployment,
        first_token_at=first_token_at,
    )


@dataclass(frozen=True, slots=True)
class Tenant:
    """Whom a generation is for, as engine queues see it: served round-robin among equals,
    higher ``priority`` (a plan's) first."""

    id: str
    priority: int = 0


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One generation, engine-neutral: chat messages or a raw text (or token) prompt."""

    sampling: Sampling
    messages: list[dict[str, str]] | None = None
    prompt: str | list[int] | None = None
    stream: bool = False  # the caller reads as it comes; upstreams are asked to stream then
    # The operator's green-list watermark in the tokens (embedded engines only: it needs the
    # logits). The plan decides, not the caller.
    watermark: bool = False
    # A layer's adapter (an upstream's name for a fine-tuned variant); empty: the base model.
    adapter: str = ""


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request an engine has accepted: its prompt counted, ready to queue and generate.

    ``payload`` is the engine's own (tokens and a compiled grammar for llama.cpp, say)."""

    request: GenerationRequest
    prompt_tokens: int
    max_tokens: int
    payload: Any = None


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: str = "float"
    dimensions: int | None = None


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    """OpenAI's ``data`` items as the engine produced them, and the tokens they took."""

    data: list[dict[str, Any]]
    prompt_tokens: int
    deployment: str = ""
