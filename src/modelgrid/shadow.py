"""Shadow evaluation: a share of an ``auto`` model's requests also runs on the model that did
not answer, after the response has ended and off the caller's bill; both answers are judged
(by the caller's reference answer, or by a judge model) and kept as training data
(storage/shadow.py; `modelgrid routing shadow` writes them as RouteLLM's table).

What the caller received is never touched: the run starts once the response is whole, on the
engines' lowest priority. Its tokens are the operator's: ledger entries on the account
``shadow``, route ``<auto>:shadow``, charged to nobody. A cascade that escalated already has
both answers (the draft and the large model's), so sampling it costs nothing more.
Requests on plans that do not keep text are never sampled: a pair holds the prompt.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace

from .call import Call, meter_whole
from .catalogue import Catalogue
from .metering import Charge, Meter
from .routing.auto import Auto
from .routing.confidence import JUDGE_PROMPT, judged, same_answer
from .storage.shadow import ShadowPair, ShadowStore
from .trace import Trace
from .types import GenerationRequest, Sampling, Tenant

log = logging.getLogger("modelgrid.shadow")

TENANT = Tenant(":shadow", priority=-100)  # after every caller's request
ACCOUNT = "shadow"
JUDGE_TOKENS = 4


@dataclass(frozen=True, slots=True)
class Served:
    """What a finished ``auto`` response gives shadow evaluation."""

    content_id: str
    request_id: str
    org_id: str | None
    auto: Auto
    model: str  # the model that answered
    request: GenerationRequest  # as the answering model got it (reviewed, layered)
    question: str  # the user's last message, for the judge
    answer: str
    draft: str | None  # a cascade's escalated draft: the small model's answer, free
    reference: str | None


class Shadow:
    def __init__(self, catalogue: Catalogue, meter: Meter, store: ShadowStore | None) -> None:
        self.catalogue = catalogue
        self.meter = meter
        self.store = store
        self._tasks: set[asyncio.Task[None]] = set()

    def consider(self, call: Call, keeps_text: bool) -> None:
        """Shadow-evaluate ``call``, an ``auto`` response that has ended, if it is sampled
        and was answered in full."""
        auto = self.catalogue.resolve(call.trace.auto).auto
        if auto is None or not keeps_text or not auto.shadows(call.trace.uid):
            return
        if call.trace.outcome != "ok" or call.screening.refused or len(call.served) != 1:
            return
        answer = call.served[0]
        if call.label is not None:  # the plan's text label is ours, not the model's
            answer = answer.replace(call.label.text, "").strip()
        prompt = call.prompt if not isinstance(call.prompt, str) else []
        question = next((m["content"] for m in reversed(prompt) if m["role"] == "user"), "")
        self.evaluate(
            Served(
                call.content_id,
                call.trace.request_id,
                call.caller.org_id,
                auto,
                call.entry.id,
                call.choices[0][1].request,
                question,
                answer,
                call.draft,
                call.reference,
            )
        )

    def evaluate(self, served: Served) -> None:
        """Start the shadow run of ``served`` in the background."""
        if self.store is None:
            return
        task = asyncio.get_running_loop().create_task(self._run(served))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Let runs in flight finish (a shutdown waits for them, as for responses)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, s: Served) -> None:
        try:
            auto = s.auto
            if s.draft is not None:
                small, large = s.draft, s.answer
            elif s.model == auto.small:
                small, large = s.answer, await self._answer(s, auto.large, s.request)
            else:
                small, large = await self._answer(s, auto.small, s.request), s.answer
            verdicts: tuple[bool | None, bool | None] = (None, None)
            how = ""
            if s.reference:
                verdicts, how = (
                    (same_answer(small, s.reference), same_answer(large, s.reference)),
                    "reference",
                )
            elif auto.judge:
                verdicts = (await self._judge(s, small), await self._judge(s, large))
                how = "judge" if None not in verdicts else ""
            assert self.store is not None
            await self.store.add(
                ShadowPair(
                    s.content_id, auto.name, s.org_id, s.model, s.question, small, large,
                    s.reference, verdicts[0], verdicts[1], how,
                )
            )  # fmt: skip
        except Exception:
            log.exception("shadow evaluation failed", extra={"content_id": s.content_id})

    async def _answer(self, s: Served, model: str, request: GenerationRequest) -> str:
        """``model``'s answer to ``request``, metered to the operator."""
        entry = self.catalogue.resolve(model)
        prepared = await entry.engine.prepare(replace(request, stream=False, watermark=False))
        trace = Trace(f"{s.request_id}#shadow-{model}", "POST", "shadow", uid=s.content_id)
        route = f"{s.auto.name}:shadow"
        charge = Charge(ACCOUNT, None, "", None, None, model, self.meter.price_of(model), (), route)
        await self.meter.reserve(charge, prepared.prompt_tokens, prepared.max_tokens, trace)
        try:
            piece = await entry.engine.complete(prepared, TENANT)
            trace.tokens_in = prepared.prompt_tokens
            meter_whole(trace, prepared, piece, counts_prompt=True)
        finally:
            await trace.settle()
        return piece.text

    async def _judge(self, s: Served, answer: str) -> bool | None:
        ask = JUDGE_PROMPT.format(question=s.question, answer=answer)
        sampling = Sampling(JUDGE_TOKENS, 0.0, None, 0.0, 0.0)
        request = GenerationRequest(sampling, messages=[{"role": "user", "content": ask}])
        return judged(await self._answer(s, s.auto.judge, request))
