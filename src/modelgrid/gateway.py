"""The request's whole path, top to bottom.

    authenticate → resolve model → wait for the database (when it is behind the requests)
      → admit (plan: model access, rate and concurrency limits)
      → review the prompt (mask, flag or refuse) → retrieve (a layer's knowledge)
      → prepare (the layer's instructions and sources; count the prompt, check it fits)
      → admit tokens (tokens per minute) → reserve (quotas and credits)
      → generate (queue, engine; a refused prompt gets the plan's refusal instead)
      → review the answer (as it streams, or whole) → label (explicit, implicit)
      → respond (one body, or a stream) → settle (the reservation to the usage, a ledger
        entry, before the response's last bytes) → account (metrics) → audit (the leaf,
        flagged items to the review queue)

Each step is a unit of its own; this module only calls them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import replace
from typing import Any

import orjson

from .admission import Admission
from .authentication import Authenticator
from .call import Call, meter, usage_of
from .cascade import Cascade
from .catalogue import Catalogue, Entry, model_not_found
from .compliance import Compliance, Screening
from .errors import InsufficientQuota, InvalidRequest
from .journals import Journals
from .knowledge.retrieval import Knowledge, Source
from .knowledge.store import EVERYONE
from .labels import Labels
from .metering import Meter
from .metrics import Metrics
from .openai_format import ChatFormat, Choice, TextFormat
from .review.config import ReviewSettings
from .review.reviewer import Reviewer
from .review.verdict import Action
from .sampling import chat_requests, embedding_tokens, text_requests
from .schemas import ChatCompletionRequest, CompletionRequest, EmbeddingsBody
from .shadow import Shadow
from .shaping import shaped
from .storage.keys import KeyRecord, KeyStore
from .streaming import stream
from .trace import Trace
from .types import EmbeddingRequest, Piece, Prepared

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
        compliance: Compliance | None = None,
        knowledge: Knowledge | None = None,
        shadow: Shadow | None = None,
        journals: Journals | None = None,
    ) -> None:
        self.cascade = Cascade(catalogue, metrics)
        self.keys = keys
        self.auth = Authenticator(keys)
        self.catalogue = catalogue
        self.metrics = metrics
        self.admission = admission
        self.meter = meter
        self.labels = labels or Labels()
        self.compliance = compliance or Compliance(Reviewer(ReviewSettings(enabled=False)))
        self.knowledge = knowledge
        self.shadow = shadow or Shadow(catalogue, meter, None)
        self.journals = journals  # whose backlog holds new requests back

    async def chat(self, caller: KeyRecord, body: ChatCompletionRequest, trace: Trace) -> Result:
        entry = self._resolve(body.model, trace, body.user, body.stream)
        cascade = entry.auto if entry.auto is not None and entry.auto.cascades else None
        if entry.auto is not None and cascade is None:
            entry = self._routed(caller, entry, body.asked(), trace)
        await self._wait_for_the_database()
        await self.admission.admit(caller, entry, trace)
        screening = self._screening(caller, entry)
        if screening.policies.input is not None:
            texts = [m.text() for m in body.messages]
            messages = [
                {"role": m.role, "content": t} for m, t in zip(body.messages, texts, strict=True)
            ]
            reviewed = await self.compliance.review_prompt(screening, texts, messages)
            if reviewed != texts:  # masked: the model sees the redacted prompt
                masked = [
                    m.model_copy(update={"content": t})
                    for m, t in zip(body.messages, reviewed, strict=True)
                ]
                body = body.model_copy(update={"messages": masked})
        sources = await self._retrieve(caller, entry, body.asked()) if entry.layer else []
        answered: Piece | None = None
        draft: str | None = None
        conversation: list[dict[str, str]] | None = None
        if cascade is not None:  # the small model answers first, and may be kept
            done = await self.cascade.run(
                caller,
                cascade,
                body,
                lambda b: self._chat_prepared(b, sources),
                self.admission.tenant_of(caller),
                self.admission.plan_name(caller),
                trace,
            )
            entry, prepared, answered = done.entry, done.prepared, done.piece
            draft, conversation = done.draft, done.conversation
        else:
            entry, prepared = await self._degrading(
                caller, entry, trace, self._chat_prepared(body, sources)
            )
        content_id = f"chatcmpl-{trace.uid}"
        json_output = body.response_format is not None and body.response_format.type != "text"
        call = Call(
            content_id,
            entry,
            ChatFormat(content_id, entry.id, body.logprobs),
            [("", p) for p in prepared],
            caller,
            self.admission.tenant_of(caller),
            trace,
            bool(body.stream_options and body.stream_options.include_usage),
            screening,
            conversation or prepared[0].request.messages or [],
            per_prompt=len(prepared),  # one prompt, however many choices
            label=self.labels.explicit(self.admission.plan_of(caller), json_output),
            aigc=self._implicit_label(content_id, trace),
            citations=[s.citation() for s in sources],
            answered=answered,
            draft=draft,
            reference=(body.metadata or {}).get("reference"),
        )
        return await self._respond(call)

    async def _wait_for_the_database(self) -> None:
        """While the journals' backlog is at its bound, new requests wait for the database to
        catch up (a 503 when it does not), rather than the server's memory growing."""
        if self.journals is not None and self.journals.full:
            await self.journals.room()

    def _chat_prepared(self, body: ChatCompletionRequest, sources: list[Source]) -> _Prepare:
        async def prepare(caller: KeyRecord, entry: Entry, trace: Trace) -> list[Prepared]:
            requests = shaped(
                self.admission, caller, entry, chat_requests(body, entry.settings), sources
            )
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
        if entry.auto is not None:
            if entry.auto.cascades:
                raise InvalidRequest(
                    f"'{entry.id}' answers with a cascade, served on /v1/chat/completions only.",
                    param="model",
                )
            prompt = body.prompt if isinstance(body.prompt, str) else ""
            entry = self._routed(caller, entry, prompt, trace)
        await self._wait_for_the_database()
        await self.admission.admit(caller, entry, trace)
        screening = self._screening(caller, entry)
        if screening.policies.input is not None:
            body = await self._review_prompts(body, screening)
        query = body.prompt if isinstance(body.prompt, str) else ""
        sources = await self._retrieve(caller, entry, query) if entry.layer else []
        prefixes: list[str] = []

        async def prepare(caller: KeyRecord, entry: Entry, trace: Trace) -> list[Prepared]:
            pairs = text_requests(body, entry.settings)
            prefixes[:] = [prefix for prefix, _ in pairs]
            capped = shaped(self.admission, caller, entry, [r for _, r in pairs], sources)
            prepared = [await entry.engine.prepare(r) for r in capped]
            trace.tokens_in = sum(p.prompt_tokens for p in prepared[:: body.n])  # once per prompt
            await self.admission.admit_tokens(caller, prepared, trace)
            await self._reserve(caller, entry, sum(p.max_tokens for p in prepared), trace)
            return prepared

        entry, prepared = await self._degrading(caller, entry, trace, prepare)
        content_id = f"cmpl-{trace.uid}"
        call = Call(
            content_id,
            entry,
            TextFormat(content_id, entry.id, body.logprobs is not None),
            list(zip(prefixes, prepared, strict=True)),
            caller,
            self.admission.tenant_of(caller),
            trace,
            bool(body.stream_options and body.stream_options.include_usage),
            screening,
            body.prompt if isinstance(body.prompt, str) else orjson.dumps(body.prompt).decode(),
            per_prompt=body.n,
            label=self.labels.explicit(self.admission.plan_of(caller), False),
            aigc=self._implicit_label(content_id, trace),
            citations=[s.citation() for s in sources],
        )
        return await self._respond(call)

    async def _review_prompts(
        self, body: CompletionRequest, screening: Screening
    ) -> CompletionRequest:
        """A completion's text prompts reviewed (token ids pass: there is no text to read)."""
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        texts = [p for p in prompts if isinstance(p, str)]
        messages = [{"role": "user", "content": t} for t in texts]
        reviewed = await self.compliance.review_prompt(screening, texts, messages)
        if reviewed == texts:
            return body
        masked: str | list[str] = reviewed[0] if isinstance(body.prompt, str) else reviewed
        return body.model_copy(update={"prompt": masked})

    async def embed(self, caller: KeyRecord, body: EmbeddingsBody, trace: Trace) -> dict[str, Any]:
        entry = self._resolve(body.model, trace, body.user, False)
        await self._wait_for_the_database()
        await self.admission.admit(caller, entry, trace)
        request = EmbeddingRequest(body.input, body.encoding_format, body.dimensions)
        trace.tokens_in = embedding_tokens(entry.engine, body.input)
        await self._reserve(caller, entry, 0, trace)
        result = await entry.router.embed(request)
        trace.tokens_in, trace.deployment = result.prompt_tokens, result.deployment or None
        self.metrics.observe_generation(entry.id, trace)
        usage = {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}
        return {"object": "list", "data": result.data, "model": entry.id, "usage": usage}

    async def _retrieve(self, caller: KeyRecord, entry: Entry, query: str) -> list[Source]:
        """A layer's passages for ``query``, from its knowledge and its parents', among those
        the caller's organisation may read (the operator's own keys may read all)."""
        layer = entry.layer
        if layer is None or self.knowledge is None or not layer.settings.knowledge_top_k:
            return []
        org = EVERYONE if self.admission.plan_of(caller) is None else caller.org_id
        return await self.knowledge.retrieve(
            layer.chain, org, query, layer.settings.knowledge_top_k
        )

    def _screening(self, caller: KeyRecord, entry: Entry) -> Screening:
        """The review that applies: the caller's plan's policy with the model's."""
        return self.compliance.screening(self.admission.terms_of(caller), entry.review_policies)

    def _implicit_label(self, content_id: str, trace: Trace) -> dict[str, str]:
        metadata = self.labels.metadata(content_id)
        trace.headers.append((b"aigc", orjson.dumps({"AIGC": metadata})))
        return metadata

    async def _reserve(self, caller: KeyRecord, entry: Entry, most_out: int, trace: Trace) -> None:
        lineage = () if entry.layer is None else (entry.layer.root, *entry.layer.chain)
        who = self.admission.payer(caller, entry.id, self.meter.price_of(entry.id), lineage)
        if trace.auto:  # what the answer would have cost on the auto's large model
            large = self.meter.price_of(trace.auto_large)
            who = replace(
                who, route=trace.auto, baseline=large, baseline_prompt=trace.earlier[0] or None
            )
        await self.meter.reserve(who, trace.tokens_in, most_out, trace)

    def _routed(self, caller: KeyRecord, entry: Entry, prompt: str, trace: Trace) -> Entry:
        """The model an ``auto`` name's router picks for ``prompt``; the response names it, and
        ``x-modelgrid-route`` says why."""
        assert entry.auto is not None
        if not self.admission.visible(caller, entry):
            raise model_not_found(entry.id)
        route = entry.auto.route(prompt, self.admission.plan_name(caller))
        trace.headers.append((b"x-modelgrid-route", route.header(entry.id)))
        trace.model = route.model
        return self.catalogue.resolve(route.model)

    def _resolve(self, model: str, trace: Trace, user: str | None, stream: bool) -> Entry:
        trace.model, trace.user, trace.stream = model, user, stream
        entry = self.catalogue.resolve(model)
        if entry.auto is not None:
            trace.auto, trace.auto_large = entry.id, entry.auto.large
        return entry

    async def _respond(self, call: Call) -> Result:
        if call.trace.stream:
            # Wait for the first piece before answering: until then a failure is still a
            # proper HTTP error (400, 503, 502), and a retry elsewhere is invisible.
            pieces = self._generate(call, 0)
            try:
                first = await anext(pieces)
            except BaseException:
                await pieces.aclose()
                raise
            return stream(call, first, pieces, self._more(call), self.compliance, self._ended)
        choices = []
        for index in range(len(call.choices)):  # a loop: a comprehension is one more frame
            choices.append(await self._collect(call, index))
        if (label := call.label) is not None:  # refusals are ours, not generated content
            choices = [
                c if c.finish_reason == "content_filter" else replace(c, text=label.apply(c.text))
                for c in choices
            ]
        call.served = [c.text for c in choices]
        self._ended(call)
        response = call.fmt.response(choices, usage_of(call.trace))
        if call.aigc is not None:
            response["AIGC"] = call.aigc
        if call.citations:
            response["citations"] = call.citations
        return response

    def _more(self, call: Call) -> Callable[[int], AsyncGenerator[Piece, None]]:
        return lambda index: self._generate(call, index)

    async def _generate(self, call: Call, index: int) -> AsyncGenerator[Piece, None]:
        """One choice's pieces, metered as they come; the engine stops if we stop early."""
        if call.screening.refused:
            call.trace.outcome = "content_filter"
            yield call.refusal()
            return
        if call.answered is not None:  # a cascade's kept answer, metered as it was made
            yield call.answered
            return
        prepared = call.choices[index][1]
        counted = 0
        async with aclosing(call.entry.engine.generate(prepared, call.tenant)) as pieces:
            async for piece in pieces:
                counted = meter(call, index, piece, counted)
                yield piece

    async def _collect(self, call: Call, index: int) -> Choice:
        prefix, prepared = call.choices[index]
        if call.screening.refused:
            call.trace.outcome = "content_filter"
            refusal = call.refusal()
            return Choice(index, prefix + refusal.text, "content_filter", [])
        if call.answered is not None:  # a cascade's kept answer, metered as it was made
            piece = call.answered
        else:
            piece = await call.entry.engine.complete(prepared, call.tenant)
            meter(call, index, piece, 0)
        text, finish = piece.text, piece.finish_reason
        if call.screening.policies.output is not None:
            screened = await self.compliance.review_answer(call.screening, text, call.prompt)
            if screened.verdict.action is Action.REFUSE:
                call.trace.outcome = "content_filter"
                text, finish = call.screening.refusal_text, "content_filter"
            else:
                text = screened.text
        return Choice(index, prefix + text, finish, piece.logprobs)

    def _ended(self, call: Call) -> None:
        """The response is over, however it ended: metrics, and its compliance records."""
        self.metrics.observe_generation(call.entry.id, call.trace)
        self.compliance.record(
            call.content_id,
            call.caller,
            call.entry.id,
            call.prompt,
            call.served,
            call.screening,
            call.aigc,
            "" if call.label is None else call.label.text,
            self.admission.terms_of(call.caller).keep_text,
        )
        if call.trace.auto:
            self.shadow.consider(call, self.admission.terms_of(call.caller).keep_text)
