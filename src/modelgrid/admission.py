"""Admission: the caller's plan decides which models it may use and how much, before any work.

Limits count per organisation, as OpenAI's do (a key outside any organisation counts alone),
and live in the limiter: this process, or Redis shared by every replica.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from .accounts import account_of
from .catalogue import Entry, model_not_found
from .errors import RateLimited
from .limiter import Limiter
from .metering import Charge
from .pricing import Price
from .ratelimit import Decision
from .settings import PlanSettings
from .storage.keys import KeyRecord
from .trace import Trace
from .types import GenerationRequest, Prepared, Tenant


class Admission:
    def __init__(self, limiter: Limiter, plans: dict[str, PlanSettings], default_plan: str) -> None:
        self.limiter = limiter
        self.plans = plans
        self.default_plan = default_plan

    def plan_of(self, caller: KeyRecord) -> PlanSettings | None:
        """The caller's plan; None for the operator's admin keys, which no plan limits."""
        if caller.role == "admin":
            return None
        # A plan removed from the config falls back to the default, never to no limits.
        return self.plans.get(caller.plan or self.default_plan) or self.plans[self.default_plan]

    def plan_name(self, caller: KeyRecord) -> str | None:
        """The caller's plan's name; None for the operator's own keys."""
        if self.plan_of(caller) is None:
            return None
        return caller.plan or self.default_plan

    def terms_of(self, caller: KeyRecord) -> PlanSettings:
        """The plan whose terms of service apply (review, labels, what is kept): the caller's;
        the operator's own keys, on none, are reviewed as the default plan is (never limited
        by it)."""
        return self.plan_of(caller) or self.plans[self.default_plan]

    def tenant_of(self, caller: KeyRecord) -> Tenant:
        """Whom the engine queues serve: the organisation, at its plan's priority (the
        operator's own requests go first)."""
        plan = self.plan_of(caller)
        return Tenant(account_of(caller), 100 if plan is None else plan.priority)

    def payer(
        self, caller: KeyRecord, model: str, price: Price, lineage: tuple[str, ...] = ()
    ) -> Charge:
        """Who pays for a request on ``model`` (a layer built on ``lineage``), and on which
        plan."""
        plan = self.plan_of(caller)
        plan_name = None if plan is None else (caller.plan or self.default_plan)
        account = account_of(caller)
        return Charge(account, caller.org_id, caller.id, plan_name, plan, model, price, lineage)

    def capped(
        self, caller: KeyRecord, requests: Sequence[GenerationRequest]
    ) -> list[GenerationRequest]:
        """The requests with max_tokens held to the plan's most (which is then also what a
        request that sets none reserves)."""
        plan = self.plan_of(caller)
        if plan is None or not plan.max_tokens:
            return list(requests)
        cap = plan.max_tokens
        return [
            r
            if r.sampling.max_tokens is not None and r.sampling.max_tokens <= cap
            else replace(r, sampling=replace(r.sampling, max_tokens=cap))
            for r in requests
        ]

    def visible(self, caller: KeyRecord, entry: Entry) -> bool:
        """Whether the caller may see and call ``entry``: its plan allows the model (for a
        layer, the layer, one it is built on, or its root model) and, for a layer, the layer's
        audience includes the caller."""
        plan = self.plan_of(caller)
        if plan is None:
            return True
        layer = entry.layer
        if layer is None:
            return plan.allows(entry.id)
        plan_name = caller.plan or self.default_plan
        return any(plan.allows(m) for m in (layer.root, *layer.chain)) and layer.visible_to(
            plan_name, caller.org_id, caller.org
        )

    async def admit(self, caller: KeyRecord, entry: Entry, trace: Trace) -> None:
        """The caller's plan: its models (others look unknown), its rate limit and its
        concurrency limit, per organisation (as OpenAI counts) and shared by every replica when
        Redis holds them. A concurrency slot is held until the response has ended."""
        plan = self.plan_of(caller)
        if plan is None:
            return
        if not self.visible(caller, entry):
            raise model_not_found(entry.id)
        account = account_of(caller)
        if plan.requests_per_minute:
            await self._count(account, "requests", plan.requests_per_minute, 1, trace)
        if plan.max_concurrency:
            await self._hold_slot(account, plan.max_concurrency, trace)

    async def admit_tokens(self, caller: KeyRecord, prepared: list[Prepared], trace: Trace) -> None:
        """Tokens per minute, once the prompt is counted: the prompt plus every choice's most."""
        plan = self.plan_of(caller)
        if plan is None or not plan.tokens_per_minute:
            return
        limit = plan.tokens_per_minute
        cost = trace.tokens_in + sum(p.max_tokens for p in prepared)
        if cost > limit:
            raise RateLimited(
                f"Request too large: it may take {cost} tokens (prompt and max_tokens), more than "
                f"this plan's {limit} tokens per minute. Lower max_tokens or shorten the prompt.",
                param="max_tokens",
            )
        await self._count(account_of(caller), "tokens", limit, cost, trace)

    async def _hold_slot(self, account: str, limit: int, trace: Trace) -> None:
        key = f"{account}:concurrency"
        token = await self.limiter.acquire(key, limit)
        if token is None:
            raise RateLimited(
                f"Too many requests at once: {limit} in flight is this plan's limit.",
                headers={"Retry-After": "1"},
            )

        async def release() -> None:
            await self.limiter.release(key, token)

        trace.releases.append(release)

    async def _count(self, account: str, kind: str, limit: int, cost: int, trace: Trace) -> None:
        """``cost`` requests or tokens against the plan's per-minute ``limit`` of them."""
        decision = await self.limiter.hit(f"{account}:{kind}", limit, cost=cost)
        trace.headers += limit_headers(kind, limit, decision)
        if not decision.allowed:
            raise RateLimited(
                f"Rate limit reached: {limit} {kind} per minute on this plan"
                + (f"; this request may take {cost}" if cost > 1 else "")
                + f". Retry in {decision.retry_after:.1f}s.",
                headers={"Retry-After": str(math.ceil(decision.retry_after))},
            )


def limit_headers(kind: str, limit: int, decision: Decision) -> list[tuple[bytes, bytes]]:
    """OpenAI's ``x-ratelimit-*-{requests,tokens}`` headers for one decision."""
    return [
        (f"x-ratelimit-limit-{kind}".encode(), str(limit).encode()),
        (f"x-ratelimit-remaining-{kind}".encode(), str(decision.remaining).encode()),
        (f"x-ratelimit-reset-{kind}".encode(), f"{decision.reset_after:.3f}s".encode()),
    ]
