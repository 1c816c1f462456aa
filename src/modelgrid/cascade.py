"""A cascade's stages on the request path (its decisions are routing/auto.py's, pure).

The small model answers first, whole, even for a streamed request: nothing reaches the client
until the answer is judged, so the response's headers already say how it was decided
(``x-modelgrid-route``), and the time to first token includes the small model's whole answer
(benchmarks/cascade_ttft.py measures it). The answer is kept, or the large model answers
instead (for ``refine``, shown the draft and asked to improve it).

Each stage is reserved, limited and metered on its own model: a draft that did not answer is
settled at once as ``<request id>#draft`` (the caller pays for the tokens it took), and the
answer is settled as any response is. Should the plan's quota refuse the large model, the draft
is served: it is paid for, and it is an answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from .call import meter_whole
from .catalogue import Catalogue, Entry
from .errors import InsufficientQuota, InvalidRequest
from .metrics import Metrics
from .routing.auto import Auto, Route
from .routing.confidence import answer_key
from .schemas import ChatCompletionRequest, Message
from .storage.keys import KeyRecord
from .trace import Trace
from .types import Piece, Prepared, Tenant

# Prepares a chat body on a model: counts it, admits its tokens, reserves its most.
PrepareBody = Callable[
    [ChatCompletionRequest], Callable[[KeyRecord, Entry, Trace], Awaitable[list[Prepared]]]
]

# Self-consistency needs varied samples; a caller's greedy decoding would give one answer k
# times.
AGREEMENT_TEMPERATURE = 0.7

REFINE_INSTRUCTION = (
    "Here is a draft answer to my last message:\n\n{draft}\n\n"
    "Write the final answer: keep what is right in the draft, correct what is wrong, and "
    "reply with the answer alone."
)


@dataclass(frozen=True, slots=True)
class Answered:
    entry: Entry  # the model that answers
    prepared: list[Prepared]
    route: Route
    piece: Piece | None = None  # the small model's answer, kept: generated already
    draft: str | None = None  # the small model's answer, escalated past
    # The conversation as the caller had it (the refined request adds the draft to it).
    conversation: list[dict[str, str]] | None = None


class Cascade:
    def __init__(self, catalogue: Catalogue, metrics: Metrics) -> None:
        self.catalogue = catalogue
        self.metrics = metrics

    async def run(
        self,
        caller: KeyRecord,
        auto: Auto,
        body: ChatCompletionRequest,
        prepare: PrepareBody,
        tenant: Tenant,
        plan: str | None,
        trace: Trace,
    ) -> Answered:
        if body.n != 1:
            raise InvalidRequest(
                f"'{auto.name}' answers with a cascade, one choice at a time: n must be 1.",
                param="n",
            )
        small = self.catalogue.resolve(auto.small)
        prepared = await prepare(_probe(auto, body))(caller, small, trace)
        prepared_small = prepared[0].request.messages
        piece, route = await self._judged(auto, small, prepared, body, tenant, plan, trace)
        trace.headers.append((b"x-modelgrid-route", route.header(auto.name)))
        if not route.escalated:
            trace.model = small.id
            kept = piece if body.logprobs else replace(piece, logprobs=[])
            return Answered(small, prepared[:1], route, kept)
        self.metrics.observe_generation(small.id, trace)
        await trace.settle("draft")
        trace.earlier = (trace.tokens_in, trace.tokens_cached, trace.tokens_out)
        trace.tokens_in = trace.tokens_cached = trace.tokens_out = 0
        trace.first_token_at = None  # the client's first token is the large model's
        large = self.catalogue.resolve(auto.large)
        final = _refined(body, piece.text) if auto.policy == "refine" else body
        try:
            prepared = await prepare(final)(caller, large, trace)
        except InsufficientQuota:
            trace.headers.append((b"x-modelgrid-route", b"large model refused by quota: draft"))
            trace.model = small.id
            return Answered(small, prepared[:1], route, piece)
        trace.model = large.id
        return Answered(large, prepared, route, None, piece.text, prepared_small)

    async def _judged(
        self,
        auto: Auto,
        small: Entry,
        prepared: list[Prepared],
        body: ChatCompletionRequest,
        tenant: Tenant,
        plan: str | None,
        trace: Trace,
    ) -> tuple[Piece, Route]:
        """The small model's answer and the signal's decision on it."""
        if auto.signal != "agreement":
            piece = await small.engine.complete(prepared[0], tenant)
            meter_whole(trace, prepared[0], piece, True)
            if auto.signal == "logprob":
                return piece, auto.trust([t.logprob for t in piece.logprobs], plan)
            return piece, auto.verify(body.asked(), piece.text, plan)
        pieces: list[Piece] = []
        keys: list[str] = []
        for sample in prepared:  # one at a time, to stop as soon as the outcome is known
            piece = await small.engine.complete(sample, tenant)
            meter_whole(trace, sample, piece, not pieces)
            pieces.append(piece)
            keys.append(answer_key(piece.text))
            route = auto.agree(keys, plan)
            if route is not None:
                modal = max(set(keys), key=keys.count)
                return pieces[keys.index(modal)], route
        raise AssertionError("agreement decides by the last sample")


def _probe(auto: Auto, body: ChatCompletionRequest) -> ChatCompletionRequest:
    """The small model's request: whole, with what its signal reads."""
    update: dict[str, object] = {"stream": False, "stream_options": None}
    if auto.signal == "logprob" and not body.logprobs:
        update |= {"logprobs": True, "top_logprobs": None}
    if auto.signal == "agreement":
        update["n"] = auto.samples
        if not body.temperature:
            update["temperature"] = AGREEMENT_TEMPERATURE
    return body.model_copy(update=update)


def _refined(body: ChatCompletionRequest, draft: str) -> ChatCompletionRequest:
    """The large model's request for ``refine``: the conversation, then the draft to improve."""
    messages = [
        *body.messages,
        Message(role="user", content=REFINE_INSTRUCTION.format(draft=draft)),
    ]
    return body.model_copy(update={"messages": messages})
