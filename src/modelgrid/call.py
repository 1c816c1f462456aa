"""One API call on its way through the gateway, and the metering of its pieces."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import orjson

from .catalogue import Entry
from .compliance import Screening
from .labels import ExplicitLabel
from .openai_format import ResponseFormatter
from .storage.keys import KeyRecord
from .trace import Trace
from .types import Piece, Prepared, Tenant, Usage


@dataclass(slots=True)
class Call:
    """The model, the response's shape, its choices, and what compliance decided of it."""

    content_id: str  # the completion's id: what the audit log and provenance look up
    entry: Entry
    fmt: ResponseFormatter
    choices: list[tuple[str, Prepared]]  # (echoed prefix, prepared generation) per choice
    caller: KeyRecord
    tenant: Tenant
    trace: Trace
    include_usage: bool
    screening: Screening
    prompt: Sequence[dict[str, Any]] | str  # as reviewed, for the records
    per_prompt: int = 1  # choices per prompt: the first of each group is billed for the prompt
    label: ExplicitLabel | None = None  # the plan's text label, if this output carries one
    aigc: dict[str, str] | None = None  # the implicit label: GB 45438 Appendix E's metadata
    served: list[str] = field(default_factory=list)  # each choice's text as the client got it
    citations: list[dict[str, Any]] = field(default_factory=list)  # a layer's sources, numbered
    answered: Piece | None = None  # a cascade's kept answer: generated already, and metered
    draft: str | None = None  # a cascade's escalated draft (for shadow evaluation)
    reference: str | None = None  # the caller's reference answer (metadata.reference)

    def counts_prompt(self, index: int) -> bool:
        return index % self.per_prompt == 0

    def refusal(self) -> Piece:
        """What a refused prompt gets instead of a generation."""
        return Piece(self.screening.refusal_text, 0, [], "content_filter")


def meter(call: Call, index: int, piece: Piece, counted: int) -> int:
    """Count a piece's tokens into the trace; return the choice's running count."""
    trace = call.trace
    counted += piece.tokens
    trace.tokens_out += piece.tokens
    if piece.first_token_at is not None and trace.first_token_at is None:
        trace.first_token_at = piece.first_token_at
    elif piece.tokens:
        trace.mark_first_token()
    if piece.usage is not None:  # the engine's exact figures replace our count
        trace.tokens_out += piece.usage.completion_tokens - counted
        if call.counts_prompt(index):
            trace.tokens_in += piece.usage.prompt_tokens - call.choices[index][1].prompt_tokens
            trace.tokens_cached += piece.usage.cached_tokens
    if piece.deployment:
        trace.deployment = piece.deployment
    return counted


def meter_whole(trace: Trace, prepared: Prepared, piece: Piece, counts_prompt: bool) -> None:
    """A whole generation's tokens into the trace (the engine's exact usage where it gives
    one): a cascade's stages, a shadow's answers."""
    trace.tokens_out += piece.usage.completion_tokens if piece.usage else piece.tokens
    if piece.usage is not None and counts_prompt:
        trace.tokens_in += piece.usage.prompt_tokens - prepared.prompt_tokens
        trace.tokens_cached += piece.usage.cached_tokens
    if piece.first_token_at is not None and trace.first_token_at is None:
        trace.first_token_at = piece.first_token_at
    trace.mark_first_token()
    if piece.deployment:
        trace.deployment = piece.deployment


async def resumed(first: Piece, rest: AsyncGenerator[Piece, None]) -> AsyncGenerator[Piece, None]:
    """The pieces of a generation whose first piece was already taken."""
    yield first
    async with aclosing(rest):
        async for piece in rest:
            yield piece


def usage_of(trace: Trace) -> Usage:
    """The response's usage: every stage's tokens (a cascade's escalated draft too: the
    caller pays for them)."""
    tokens_in, cached, tokens_out = trace.earlier
    return Usage(
        trace.tokens_in + tokens_in, trace.tokens_out + tokens_out, trace.tokens_cached + cached
    )


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"
