"""Metering: reserve before generation, settle after it, and write the ledger entry.

A request reserves the most it may cost (its prompt plus every choice's max_tokens, priced
as uncached input and output) against each quota and the credits, all or nothing. When its
response has ended (whole, streamed, failed or cut off by a disconnect), the reservation
settles to what was used, never more than was reserved, so that however many requests race,
the charges settled never pass a cap and no balance goes negative. A request that failed
before producing anything is charged nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from .cache import SingleFlightCache
from .counters import Counters
from .errors import InsufficientQuota
from .pricing import FREE, Cost, OffPeak, Price, charge, cost, list_price
from .quota import Bucket, buckets, refusal, ttl_seconds
from .settings import PlanSettings
from .storage.ledger import Ledger, LedgerEntry
from .trace import Trace

log = logging.getLogger("modelgrid.metering")
# Accounts whose credits granted are remembered at most.
CACHED_ACCOUNTS = 50_000


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Charge:
    """Who pays for a request, and at what price."""

    account: str
    org_id: str | None
    key_id: str
    plan_name: str | None
    plan: PlanSettings | None  # None: the operator's own keys, never limited or charged
    model: str
    price: Price
    # For a layer, the models it is built on: a plan's quotas that cover one cover it too.
    lineage: tuple[str, ...] = ()
    # When an ``auto`` model chose the model: its name, and its large model's price, what
    # the answer's tokens are worth there (the ledger's baseline, for the saving).
    route: str = ""
    baseline: Price | None = None
    baseline_prompt: int | None = None  # the prompt as the large model would have read it


@dataclass(frozen=True, slots=True)
class _Reservation:
    charge: Charge
    buckets: Sequence[Bucket]
    tokens: int  # the most it may use
    amount: int  # the most it may be charged, micro-credits
    off_peak: bool
    started_at: datetime
    token: str  # the counters' own name for it


class Meter:
    def __init__(
        self,
        counters: Counters,
        ledger: Ledger,
        prices: dict[str, Price],
        off_peak: OffPeak | None = None,
        clock: Callable[[], datetime] = utc_now,
        enabled: bool = True,
        costs: dict[str, tuple[Cost, Callable[[], int]]] | None = None,
        cache_seconds: float = 1.0,  # an account's credits granted, remembered
    ) -> None:
        self.enabled = enabled
        self.costs = costs or {}
        self.counters = counters
        self.ledger = ledger
        self.prices = prices
        self.off_peak = off_peak
        self._clock = clock
        # Each account's credits granted, the cap of its credits counter; the change feed
        # reports a grant made anywhere, so most requests skip the database.
        self._granted: SingleFlightCache[str, int] = SingleFlightCache(
            ledger.granted, cache_seconds, CACHED_ACCOUNTS
        )

    def price_of(self, model: str) -> Price:
        return self.prices.get(model, FREE)

    async def reserve(self, who: Charge, tokens_in: int, max_tokens: int, trace: Trace) -> None:
        """Reserve the request's most against ``who``'s quotas and credits, or refuse it with
        429 insufficient_quota; its settlement then runs once the response has ended."""
        if not self.enabled:
            return
        now = self._clock()
        off_peak = self.off_peak is not None and self.off_peak.contains(now)
        plan = who.plan
        tokens = tokens_in + max_tokens
        amount = 0
        found: list[Bucket] = []
        token = ""
        if plan is not None:
            if plan.billed:
                amount = charge(
                    who.price, tokens_in, 0, max_tokens, plan.price_multiplier, off_peak
                )
            granted = await self._granted.get(who.account) if plan.billed else 0
            found = buckets(plan, who.account, now, granted, (who.model, *who.lineage))
            if found:
                amounts = [b.amount(tokens, amount) for b in found]
                token = await self._take(who.account, found, amounts, now)
        reservation = _Reservation(who, found, tokens, amount, off_peak, now, token)

        async def settle(stage: str = "") -> None:
            await self._settle(reservation, trace, stage)

        trace.settlement = settle

    async def _take(
        self, account: str, found: list[Bucket], amounts: list[int], now: datetime
    ) -> str:
        """Reserve ``amounts`` on the counters; returns the reservation's token."""
        keys, caps = [b.key for b in found], [b.cap for b in found]
        for _ in range(3):  # a counter found missing is loaded, then the reservation retried
            outcome = await self.counters.reserve(keys, amounts, caps)
            if outcome.status == "ok":
                return outcome.token
            bucket = found[outcome.index]
            if outcome.status == "refused":
                text, wait = refusal(bucket, now)
                headers = {} if wait is None else {"Retry-After": str(wait)}
                refused = InsufficientQuota(text, headers=headers)
                refused.quota = bucket.kind
                raise refused
            # This one and any after it may be new (an account's first request loads all).
            await self._load(account, found[outcome.index :], now)
        raise RuntimeError(f"quota counter {found[0].key} could not be loaded")

    async def _load(self, account: str, found: list[Bucket], now: datetime) -> None:
        """Counters' values from the ledger: what the account used in each window (for
        credits: every charge less every grant). This process's entries still in the journal
        go to the database first, in one flush for them all (shared with whatever other
        loads wait meanwhile); other replicas' reach it within their flush interval."""
        await self.ledger.flush()
        windows = [None if b.kind == "credits" else b.since for b in found]
        for bucket, totals in zip(
            found, await self.ledger.totals_since(account, windows), strict=True
        ):
            # Credits: every charge of all time (the cap is what was granted).
            value = totals.tokens_in + totals.tokens_out if bucket.in_tokens else totals.charge
            await self.counters.load(bucket.key, value, ttl_seconds(bucket, now))

    def _cost(self, trace: Trace, tokens_in: int, tokens_out: int) -> int:
        """The operator's cost of the request on the deployment that served it: tokens at
        its prices, and its time shared with the requests in flight there as it ends."""
        found = self.costs.get(trace.deployment or "")
        if found is None:
            return 0
        model, inflight = found
        seconds = time.perf_counter() - trace.started
        return cost(model, tokens_in, tokens_out, seconds, inflight() + 1)

    async def grant(self, account: str, amount: int, kind: str, note: str = "") -> None:
        """Credits in (a top-up, a redeemed code, the starting grant) or out (a correction):
        recorded in the ledger; other processes and replicas see it within a second."""
        await self.ledger.grant(account, amount, kind, note)
        self._granted.forget(account)

    def granted_changed(self, account: str) -> None:
        """A grant to ``account`` made elsewhere (the change feed's word)."""
        self._granted.forget(account)

    async def balance(self, account: str) -> int:
        """Credits left in micro-credits: every grant less every charge settled so far."""
        await self.ledger.flush()
        return await self.ledger.granted(account) - await self.ledger.spent(account)

    async def _settle(self, r: _Reservation, trace: Trace, stage: str) -> None:
        """``stage``: a step of the request that did not answer it (a cascade's draft, say),
        entered as ``<request id>#<stage>`` with no baseline."""
        who = r.charge
        produced = trace.tokens_out > 0 or trace.first_token_at is not None
        tokens_in = trace.tokens_in if produced else 0
        tokens_cached = trace.tokens_cached if produced else 0
        tokens_out = trace.tokens_out if produced else 0
        plan = who.plan
        charged = 0
        if plan is not None and plan.billed:
            exact = charge(
                who.price, tokens_in, tokens_cached, tokens_out, plan.price_multiplier, r.off_peak
            )
            charged = min(exact, r.amount)  # never past what was reserved, so never past a cap
        used = min(tokens_in + tokens_out, r.tokens)
        if r.buckets:
            # Counters first, then the entry: a replica killed in between leaves counters
            # that over-count by one request, never a reservation handed back whose request
            # also has an entry. Should Redis fail here, the counters keep the reservation
            # (over-counting again) and the ledger stays exact.
            deltas = [b.amount(used, charged) - b.amount(r.tokens, r.amount) for b in r.buckets]
            try:
                await self.counters.adjust([b.key for b in r.buckets], deltas, r.token)
            except Exception:
                log.exception("settlement: counters not adjusted", extra={"account": who.account})
        baseline = 0
        if who.baseline is not None and not stage:
            prompt = (
                tokens_in if who.baseline_prompt is None or not produced else who.baseline_prompt
            )
            baseline = list_price(who.baseline, prompt, min(tokens_cached, prompt), tokens_out)
        self.ledger.append(
            LedgerEntry(
                request_id=trace.request_id + (f"#{stage}" if stage else ""),
                account=who.account,
                org_id=who.org_id,
                key_id=who.key_id,
                model=who.model,
                deployment=trace.deployment,
                plan=who.plan_name or "",
                tokens_in=tokens_in,
                tokens_cached=tokens_cached,
                tokens_out=tokens_out,
                list_price=list_price(who.price, tokens_in, tokens_cached, tokens_out),
                charge=charged,
                cost=self._cost(trace, tokens_in, tokens_out),
                outcome=trace.outcome,
                status=trace.status,
                started_at=r.started_at,
                created_at=self._clock(),
                route=who.route,
                baseline=baseline,
            )
        )
