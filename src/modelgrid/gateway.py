"""The request's whole path, top to bottom.

    authenticate → resolve model → admit (plan: model access, rate and concurrency limits)
      → prepare (count the prompt, check it fits) → admit tokens (tokens per minute)
      → reserve (quotas and credits) → generate (queue, engine)
      → respond (one body, or a stream) → account (trace, metrics)
      → settle (when the response has ended: the reservation to the usage, a ledger entry)

Later steps (review, labelling, audit) slot in here in that order; each is a unit of its own,
and this module only calls them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any

import orjson

from .admission import Admission
from .catalogue import Catalogue, Entry
from .errors import (
    APIError,
    AuthenticationFailed,
    InsufficientQuota,
    PermissionDenied,
    ServerError,
)
from .keys import parse_bearer
from .labels import ExplicitLabel, Labels
from .metering import Meter
from .metrics import Metrics
from .openai_format import ChatFormat, Choice, ResponseFormatter, TextFormat
from .sampling import chat_requests, text_requests
from .schemas import ChatCompletionRequest, CompletionRequest, EmbeddingsBody
from .storage.keys import KeyRecord, KeyStore
from .trace import Trace
from .types import EmbeddingRequest, Piece, Prepared, Tenant, Usage

log = logging.getLogger("modelgrid.gateway")

Result = dict[str, Any] | AsyncGenerator[bytes, None]
# Prepares a request on a model: counts it, admits its tokens, reserves its most.
_Prepare = Callable[[KeyRecord, Entry, Trace], Awaitable[list[Prepared]]]


class Gateway:
    def __init__(
        self,
        keys: KeyStore,
        catalogue: Catalogue,
        metrics: Metrics,
        admission: Admission,
        meter: Meter,
        labels: Labels | None = None,
    ) -> None:
        self.keys = keys
        self.catalogue = catalogue
        self.metrics = metrics
        self.admission = admission
        self.meter = meter
        self.labels = labels or Labels()

    async def authenticate(self, authorization: str | None, trace: Trace) -> KeyRecord:
        key = parse_bearer(authorization)
        if key is None:
            raise AuthenticationFailed(
                "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.",
                code="missing_api_key",
            )
        record = await self.keys.verify(key)
        if record is None:
            raise AuthenticationFailed(f"Incorrect API key provided: {_masked(key)}.")
        trace.key_prefix = record.prefix
        return record

    async def authenticate_admin(
        self, authorization: str | None, trace: Trace, org_admin_too: bool = False
    ) -> KeyRecord:
        """The operator's admin key; with ``org_admin_too``, an organisation's admin key as
        well (the handler then keeps it to its own organisation)."""
        record = await self.authenticate(authorization, trace)
        if record.role == "admin" or (
            org_admin_too and record.role == "org_admin" and record.org_id is not None
        ):
            return record
        raise PermissionDenied("This endpoint needs an admin key.")

    async def chat(self, caller: KeyRecord, body: ChatCompletionRequest, trace: Trace) -> Result:
        entry = self._resolve(body.model, trace, body.user, body.stream)
        await self.admission.admit(caller, entry, trace)
        entry, prepared = await self._degrading(caller, entry, trace, self._chat_prepared(body))
        content_id = f"chatcmpl-{trace.uid}"
        json_output = body.response_format is not None and body.response_format.type != "text"
        call = _Call(
            entry,
            ChatFormat(content_id, entry.id, body.logprobs),
            [("", p) for p in prepared],
            caller,
            self.admission.tenant_of(caller),
            trace,
            bool(body.stream_options and body.stream_options.include_usage),
            per_prompt=len(prepared),  # one prompt, however many choices
            label=self.labels.explicit(self.admission.plan_of(caller), json_output),
            aigc=self._implicit_label(content_id, trace),
        )
        return await self._respond(call)

    def _chat_prepared(self, body: ChatCompletionRequest) -> _Prepare:
        async def prepare(caller: KeyRecord, entry: Entry, trace: Trace) -> list[Prepared]:
            requests = self.admission.capped(caller, chat_requests(body, entry.settings))
            prepared = [await entry.engine.prepare(r) for r in requests]
            trace.tokens_in = prepared[0].prompt_tokens  # one prompt, however many choices
            await self.admission.admit_tokens(caller, prepared, trace)
            await self._reserve(caller, entry, sum(p.max_tokens for p in prepared), trace)
            return prepared

        return prepare

    async def _degrading(
        self, caller: KeyRecord, entry: Entry, trace: Trace, prepare: _Prepare
    ) -> tuple[Entry, list[Prepared]]:
        """``prepare`` on ``entry``; when a token quota refuses it and the plan says so, on
        the plan's small model instead, and the response says so."""
        mark = len(trace.headers)
        try:
            return entry, await prepare(caller, entry, trace)
        except InsufficientQuota as refused:
            plan = self.admission.plan_of(caller)
            small = plan.degrade_to if plan is not None else ""
            if not small or small == entry.id or not refused.quota.endswith("_tokens"):
                raise
            smaller = self.catalogue.resolve(small)
            trace.model = smaller.id
            del trace.headers[mark:]  # the refused attempt's token headers
            trace.headers.append((b"x-modelgrid-degraded", f"{entry.id} -> {small}".encode()))
            return smaller, await prepare(caller, smaller, trace)

    async def complete(self, caller: KeyRecord, body: CompletionRequest, trace: Trace) -> Result:
        entry = self._resolve(body.model, trace, body.user, body.stream)
        await self.admission.admit(caller, entry, trace)
        prefixes: list[str] = []

        async def prepare(caller: KeyRecord, entry: Entry, trace: Trace) -> list[Prepared]:
            pairs = text_requests(body, entry.settings)
            prefixes[:] = [prefix for prefix, _ in pairs]
            capped = self.admission.capped(caller, [r for _, r in pairs])
            prepared = [await entry.engine.prepare(r) for r in capped]
            trace.tokens_in = sum(p.prompt_tokens for p in prepared[:: body.n])  # once per prompt
            await self.admission.admit_tokens(caller, prepared, trace)
            await self._reserve(caller, entry, sum(p.max_tokens for p in prepared), trace)
            return prepared

        entry, prepared = await self._degrading(caller, entry, trace, prepare)
        content_id = f"cmpl-{trace.uid}"
        call = _Call(
            entry,
            TextFormat(content_id, entry.id, body.logprobs is not None),
            list(zip(prefixes, prepared, strict=True)),
            caller,
            self.admission.tenant_of(caller),
            trace,
            bool(body.stream_options and body.stream_options.include_usage),
            per_prompt=body.n,
            label=self.labels.explicit(self.admission.plan_of(caller), False),
            aigc=self._implicit_label(content_id, trace),
        )
        return await self._respond(call)

    async def embed(self, caller: KeyRecord, body: EmbeddingsBody, trace: Trace) -> dict[str, Any]:
        entry = self._resolve(body.model, trace, body.user, False)
        await self.admission.admit(caller, entry, trace)
        request = EmbeddingRequest(body.input, body.encoding_format, body.dimensions)
        trace.tokens_in = _estimate(entry, body.input)
        await self._reserve(caller, entry, 0, trace)
        result = await entry.router.embed(request)
        trace.tokens_in, trace.deployment = result.prompt_tokens, result.deployment or None
        self._account_tokens(entry.id, trace)
        usage = {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}
        return {"object": "list", "data": result.data, "model": entry.id, "usage": usage}

    def _implicit_label(self, content_id: str, trace: Trace) -> dict[str, str]:
        metadata = self.labels.metadata(content_id)
        trace.headers.append((b"aigc", orjson.dumps({"AIGC": metadata})))
        return metadata

    async def _reserve(self, caller: KeyRecord, entry: Entry, most_out: int, trace: Trace) -> None:
        who = self.admission.payer(caller, entry.id, self.meter.price_of(entry.id))
        await self.meter.reserve(who, trace.tokens_in, most_out, trace)

    def _resolve(self, model: str, trace: Trace, user: str | None, stream: bool) -> Entry:
        trace.model, trace.user, trace.stream = model, user, stream
        return self.catalogue.resolve(model)

    async def _respond(self, call: _Call) -> Result:
        if call.trace.stream:
            # Wait for the first piece before answering: until then a failure is still a
            # proper HTTP error (400, 503, 502), and a retry elsewhere is invisible.
            pieces = self._generate(call, 0)
            try:
                first = await anext(pieces)
            except BaseException:
                await pieces.aclose()
                raise
            return self._stream(call, first, pieces)
        choices = [await self._collect(call, index) for index in range(len(call.choices))]
        self._account(call)
        if call.label is not None:
            label = call.label
            choices = [replace(c, text=label.apply(c.text)) for c in choices]
        response = call.fmt.response(choices, _usage(call.trace))
        if call.aigc is not None:
            response["AIGC"] = call.aigc
        return response

    async def _generate(self, call: _Call, index: int) -> AsyncGenerator[Piece, None]:
        """One choice's pieces, metered as they come; the engine stops if we stop early."""
        prepared = call.choices[index][1]
        counted = 0
        async with aclosing(call.entry.engine.generate(prepared, call.tenant)) as pieces:
            async for piece in pieces:
                counted = _meter(call, index, piece, counted)
                yield piece

    async def _collect(self, call: _Call, index: int) -> Choice:
        prefix, prepared = call.choices[index]
        piece = await call.entry.engine.complete(prepared, call.tenant)
        _meter(call, index, piece, 0)
        return Choice(index, prefix + piece.text, piece.finish_reason, piece.logprobs)

    async def _stream(
        self, call: _Call, first: Piece, rest: AsyncGenerator[Piece, None]
    ) -> AsyncGenerator[bytes, None]:
        fmt, trace, label = call.fmt, call.trace, call.label
        tagged = call.aigc is None

        def sse(payload: dict[str, Any]) -> bytes:
            nonlocal tagged
            if not tagged:  # the implicit label rides on the stream's first chunk
                payload["AIGC"], tagged = call.aigc, True
            return _sse(payload)

        try:
            for index, (prefix, _) in enumerate(call.choices):
                if (opening := fmt.start(index, prefix)) is not None:
                    yield sse(opening)
                if label is not None and label.opening is not None:
                    yield sse(fmt.delta(index, label.opening, []))
                source = _resumed(first, rest) if index == 0 else self._generate(call, index)
                async with aclosing(source) as pieces:
                    async for piece in pieces:
                        if piece.text or piece.logprobs:
                            yield sse(fmt.delta(index, piece.text, piece.logprobs))
                        if piece.finish_reason is not None:
                            if label is not None and label.closing is not None:
                                yield sse(fmt.delta(index, label.closing, []))
                            yield sse(fmt.finish(index, piece.finish_reason))
            # Settled before the stream's end reaches the client: a stream it saw end has its
            # ledger entry, whatever happens to this process next.
            await trace.settle()
            if call.include_usage:
                yield _sse(fmt.usage(_usage(trace)))
            yield b"data: [DONE]\n\n"
        except (GeneratorExit, asyncio.CancelledError):
            trace.outcome = "cancelled"
            raise
        except APIError as exc:
            trace.outcome = exc.code or exc.type
            yield _sse(exc.body())
        except Exception:
            # Headers are sent: the client learns of the failure from an error event, the log
            # from the traceback.
            log.exception("generation failed mid-stream", extra={"request_id": trace.request_id})
            trace.outcome = "error"
            failure = ServerError(f"The server failed mid-stream (request {trace.request_id}).")
            yield _sse(failure.body())
        finally:
            await rest.aclose()  # a no-op once consumed; frees the engine otherwise
            self._account(call)

    def _account(self, call: _Call) -> None:
        self._account_tokens(call.entry.id, call.trace)

    def _account_tokens(self, model: str, trace: Trace) -> None:
        self.metrics.observe_generation(model, trace)


@dataclass(frozen=True, slots=True)
class _Call:
    """One API call on its way through: the model, the response shape, and its choices."""

    entry: Entry
    fmt: ResponseFormatter
    choices: list[tuple[str, Prepared]]  # (echoed prefix, prepared generation) per choice
    caller: KeyRecord
    tenant: Tenant
    trace: Trace
    include_usage: bool
    per_prompt: int = 1  # choices per prompt: the first of each group is billed for the prompt
    label: ExplicitLabel | None = None  # the plan's text label, if this output carries one
    aigc: dict[str, str] | None = None  # the implicit label: GB 45438 Appendix E's metadata

    def counts_prompt(self, index: int) -> bool:
        return index % self.per_prompt == 0


def _meter(call: _Call, index: int, piece: Piece, counted: int) -> int:
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


async def _resumed(first: Piece, rest: AsyncGenerator[Piece, None]) -> AsyncGenerator[Piece, None]:
    """The pieces of a generation whose first piece was already taken."""
    yield first
    async with aclosing(rest):
        async for piece in rest:
            yield piece


def _usage(trace: Trace) -> Usage:
    return Usage(trace.tokens_in, trace.tokens_out, trace.tokens_cached)


def _estimate(entry: Entry, inputs: str | list[str] | list[int] | list[list[int]]) -> int:
    """Tokens an embedding request may take, for its reservation: counted by the model for
    text, and exact for token ids."""
    if isinstance(inputs, str):
        return entry.engine.count_tokens(inputs)
    return sum(
        entry.engine.count_tokens(x) if isinstance(x, str) else len(x) if isinstance(x, list) else 1
        for x in inputs
    )


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _masked(key: str) -> str:
    return key[:6] + "*" * 4 + key[-4:] if len(key) > 12 else "*" * len(key)
