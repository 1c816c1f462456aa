"""A model's deployments behind one engine: balancing, retries, fallbacks, circuit breakers.

Attempts are retried, with exponential backoff and full jitter, only while nothing has reached
the caller: once a piece is out, a failure ends the response with an error instead of silently
restarting it elsewhere. A full queue on one deployment sends the request to another, but is not
held against the deployment's health; connection errors, timeouts, 429s and 5xx are.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from .balancing import Breaker, DeploymentState, choose
from .balancing import backoff as backoff_delay
from .engines.base import Engine, EngineStats
from .errors import APIError, Overloaded, UpstreamError
from .settings import ModelSettings
from .types import EmbeddingRequest, EmbeddingResult, GenerationRequest, Piece, Prepared, Tenant

T = TypeVar("T")


@dataclass(slots=True)
class Deployment:
    engine: Engine
    state: DeploymentState
    kind: str
    target: str  # where it runs (a file or a base URL), for operators; never a secret


@dataclass(frozen=True, slots=True)
class _Plan:
    deployment: Deployment | None  # None: delegated to a fallback model
    inner: Prepared
    fallback: Router | None = None


class Router(Engine):
    def __init__(
        self,
        model_id: str,
        settings: ModelSettings,
        deployments: list[Deployment],
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.name = model_id
        self.settings = settings
        self.deployments = deployments
        self.fallbacks: list[Router] = []  # linked by the catalogue once every model exists
        self._clock = clock
        self._rng = rng or random.Random()

    @property
    def created(self) -> int:  # type: ignore[override]
        return min(d.engine.created for d in self.deployments)

    @property
    def context_length(self) -> int:  # type: ignore[override]
        return max(d.engine.context_length for d in self.deployments)

    async def start(self) -> None:
        for deployment in self.deployments:
            await deployment.engine.start()

    async def close(self) -> None:
        for deployment in self.deployments:
            await deployment.engine.close()

    def count_tokens(self, text: str) -> int:
        return self.deployments[0].engine.count_tokens(text)

    def stats(self) -> EngineStats:
        parts = [d.engine.stats() for d in self.deployments]
        return EngineStats(
            waiting=sum(p.waiting for p in parts),
            busy=sum(p.busy for p in parts),
            slots=sum(p.slots for p in parts),
        )

    def _choose(self, tried: frozenset[str] = frozenset()) -> Deployment | None:
        states = [d.state for d in self.deployments]
        picked = choose(states, self.settings.balancing, self._clock(), self._rng, tried)
        return None if picked is None else next(d for d in self.deployments if d.state is picked)

    async def prepare(self, request: GenerationRequest) -> Prepared:
        deployment = self._choose()
        if deployment is not None:
            inner = await deployment.engine.prepare(request)
            return _wrap(request, _Plan(deployment, inner))
        for fallback in self.fallbacks:
            try:
                inner = await fallback.prepare(request)
            except (UpstreamError, Overloaded):
                continue
            return _wrap(request, _Plan(None, inner, fallback))
        raise UpstreamError(
            f"Every deployment of '{self.name}' is failing; retry later.", status=503
        )

    async def generate(self, prepared: Prepared, tenant: Tenant) -> AsyncGenerator[Piece, None]:
        plan: _Plan = prepared.payload
        if plan.fallback is not None:
            async with aclosing(plan.fallback.generate(plan.inner, tenant)) as pieces:
                async for piece in pieces:
                    yield piece
            return
        assert plan.deployment is not None
        deployment, inner = plan.deployment, plan.inner
        tried: set[str] = set()
        error: APIError | None = None
        for attempt in range(self.settings.max_retries + 1):
            if attempt:
                nxt = self._choose(frozenset(tried))
                if nxt is None or (isinstance(error, Overloaded) and nxt.state.name in tried):
                    break
                await asyncio.sleep(
                    backoff_delay(attempt, self.settings.retry_backoff_seconds, self._rng)
                )
                deployment, inner = nxt, await nxt.engine.prepare(prepared.request)
            tried.add(deployment.state.name)
            outcome = _Attempt()
            async with aclosing(self._attempt(deployment, inner, tenant, outcome)) as pieces:
                try:
                    async for piece in pieces:
                        yield piece
                    return
                except (UpstreamError, Overloaded) as exc:
                    if outcome.emitted or not getattr(exc, "retryable", True):
                        raise
                    error = exc
        for fallback in self.fallbacks:
            try:
                fallback_prepared = await fallback.prepare(prepared.request)
            except (UpstreamError, Overloaded) as exc:
                error = exc
                continue
            emitted = False
            async with aclosing(fallback.generate(fallback_prepared, tenant)) as pieces:
                try:
                    async for piece in pieces:
                        emitted = True
                        yield piece
                    return
                except (UpstreamError, Overloaded) as exc:
                    if emitted:
                        raise
                    error = exc
        raise error or UpstreamError(f"No deployment of '{self.name}' is available.", status=503)

    async def _attempt(
        self, deployment: Deployment, inner: Prepared, tenant: Tenant, outcome: _Attempt
    ) -> AsyncGenerator[Piece, None]:
        started = self._clock()
        generation = deployment.engine.generate(inner, tenant)
        with self._tracked(deployment):
            async with aclosing(generation) as pieces:
                async for piece in pieces:
                    if not outcome.emitted:
                        outcome.emitted = True
                        deployment.state.observe_latency(self._clock() - started)
                    piece.deployment = deployment.state.name
                    yield piece

    def _tracked(self, deployment: Deployment) -> _Tracked:
        return _Tracked(deployment.state, self._clock)

    async def complete(self, prepared: Prepared, tenant: Tenant) -> Piece:
        """A non-streamed answer: the same retries and fallbacks, without a stream to guard."""
        plan: _Plan = prepared.payload
        if plan.fallback is not None:
            return await plan.fallback.complete(plan.inner, tenant)

        async def run(deployment: Deployment) -> Piece:
            inner = plan.inner
            if deployment is not plan.deployment:
                inner = await deployment.engine.prepare(prepared.request)
            started = self._clock()
            piece = await deployment.engine.complete(inner, tenant)
            deployment.state.observe_latency(self._clock() - started)
            piece.deployment = deployment.state.name
            return piece

        async def fall_back(fallback: Router) -> Piece:
            return await fallback.complete(await fallback.prepare(prepared.request), tenant)

        return await self._with_retries(plan.deployment, run, fall_back)

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        async def run(deployment: Deployment) -> EmbeddingResult:
            result = await deployment.engine.embed(request)
            return replace(result, deployment=deployment.state.name)

        async def fall_back(fallback: Router) -> EmbeddingResult:
            return await fallback.embed(request)

        return await self._with_retries(None, run, fall_back)

    async def _with_retries(
        self,
        first: Deployment | None,
        run: Callable[[Deployment], Awaitable[T]],
        fall_back: Callable[[Router], Awaitable[T]],
    ) -> T:
        """``run`` on a deployment, retried on others, then the fallback models in order."""
        tried: set[str] = set()
        error: APIError | None = None
        for attempt in range(self.settings.max_retries + 1):
            deployment = first if attempt == 0 and first else self._choose(frozenset(tried))
            if deployment is None:
                break
            if attempt:
                if isinstance(error, Overloaded) and deployment.state.name in tried:
                    break  # a full queue is not worth waiting on again
                await asyncio.sleep(
                    backoff_delay(attempt, self.settings.retry_backoff_seconds, self._rng)
                )
            tried.add(deployment.state.name)
            try:
                with self._tracked(deployment):
                    return await run(deployment)
            except (UpstreamError, Overloaded) as exc:
                if not getattr(exc, "retryable", True):
                    raise
                error = exc
        for fallback in self.fallbacks:
            try:
                return await fall_back(fallback)
            except (UpstreamError, Overloaded) as exc:
                error = exc
        raise error or UpstreamError(f"Every deployment of '{self.name}' is failing.", status=503)

    def snapshot(self) -> list[dict[str, Any]]:
        now = self._clock()
        return [
            {
                "name": d.state.name,
                "engine": d.kind,
                "target": d.target,
                "weight": d.state.weight,
                "inflight": d.state.inflight,
                "requests": d.state.requests,
                "failures": d.state.failures,
                "breaker": d.state.breaker.state(now),
                "consecutive_failures": d.state.breaker.failures,
                "latency_ms": None if d.state.latency is None else round(d.state.latency * 1000, 2),
            }
            for d in self.deployments
        ]


class _Tracked:
    """One attempt on a deployment, as its state and breaker see it (a plain context manager:
    this runs on every request, and a generator-based one costs several times more)."""

    __slots__ = ("clock", "started", "state")

    def __init__(self, state: DeploymentState, clock: Callable[[], float]) -> None:
        self.state = state
        self.clock = clock
        self.started = 0.0

    def __enter__(self) -> None:
        state = self.state
        self.started = self.clock()
        state.breaker.on_attempt(self.started)
        state.inflight += 1
        state.requests += 1

    def __exit__(self, kind: type[BaseException] | None, exc: object, tb: object) -> None:
        state = self.state
        state.inflight -= 1
        if kind is None:
            state.breaker.on_success(self.started)
        elif issubclass(kind, UpstreamError):
            state.failures += 1
            state.breaker.on_failure(self.clock())
        else:
            # Overloaded is load, not ill health, and the breaker does not count it; neither
            # that nor a cancellation settles a probe, so let another probe run.
            state.breaker.probing = False


@dataclass(slots=True)
class _Attempt:
    emitted: bool = False


def _wrap(request: GenerationRequest, plan: _Plan) -> Prepared:
    return Prepared(request, plan.inner.prompt_tokens, plan.inner.max_tokens, payload=plan)


def new_state(name: str, weight: float, failures: int, cooldown: float) -> DeploymentState:
    return DeploymentState(name=name, weight=weight, breaker=Breaker(failures, cooldown))
