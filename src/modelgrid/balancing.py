"""Choosing a deployment, and the circuit breaker that takes a failing one out (pure logic).

Nothing here does I/O or reads the clock: callers pass ``now`` and a random generator, so every
decision is a plain function of its inputs and tested as one.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]
Strategy = Literal["weighted", "least_inflight", "latency"]

# Weight of the newest sample in the latency average: about the last ten requests count.
_EWMA_ALPHA = 0.2


@dataclass(slots=True)
class Breaker:
    """Opens after ``threshold`` failures in a row; after ``cooldown`` seconds lets one probe
    through (half-open); the probe's success closes it, its failure opens it again."""

    threshold: int
    cooldown: float
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False

    def state(self, now: float) -> BreakerState:
        if self.opened_at is None:
            return "closed"
        return "open" if now - self.opened_at < self.cooldown else "half_open"

    def allows(self, now: float) -> bool:
        state = self.state(now)
        return state == "closed" or (state == "half_open" and not self.probing)

    def on_attempt(self, now: float) -> None:
        if self.state(now) == "half_open":
            self.probing = True

    def on_success(self, started: float) -> None:
        """An attempt that began at ``started`` succeeded. One that began before the breaker
        opened says nothing about the deployment since: it leaves the breaker as it is."""
        if self.opened_at is not None and started < self.opened_at:
            return
        self.failures, self.opened_at, self.probing = 0, None, False

    def on_failure(self, now: float) -> None:
        self.failures += 1
        if self.probing or self.failures >= self.threshold:
            self.opened_at, self.probing = now, False


@dataclass(slots=True)
class DeploymentState:
    name: str
    weight: float
    breaker: Breaker
    inflight: int = 0
    latency: float | None = None  # moving average of time to first output, seconds
    requests: int = 0
    failures: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    def observe_latency(self, seconds: float) -> None:
        if self.latency is None:
            self.latency = seconds
        else:
            self.latency += _EWMA_ALPHA * (seconds - self.latency)


def choose(
    deployments: Sequence[DeploymentState],
    strategy: Strategy,
    now: float,
    rng: random.Random,
    tried: frozenset[str] = frozenset(),
) -> DeploymentState | None:
    """The deployment for the next attempt, or None when every breaker is open.

    Deployments this request already tried are avoided while others are available; with a
    single healthy deployment, a retry goes back to it."""
    open_ = [d for d in deployments if d.breaker.allows(now)]
    fresh = [d for d in open_ if d.name not in tried]
    candidates = fresh or open_
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    if strategy == "weighted":
        return rng.choices(candidates, weights=[d.weight for d in candidates])[0]
    if strategy == "latency":
        unmeasured = [d for d in candidates if d.latency is None]
        if unmeasured:  # try each at least once before trusting the averages
            return rng.choice(unmeasured)
        return _least(candidates, lambda d: (d.latency or 0.0) / d.weight, rng)
    return _least(candidates, lambda d: (d.inflight + 1) / d.weight, rng)


def _least(
    candidates: Sequence[DeploymentState],
    key: Callable[[DeploymentState], float],
    rng: random.Random,
) -> DeploymentState:
    scores = [key(d) for d in candidates]
    best = min(scores)
    return rng.choice([d for d, s in zip(candidates, scores, strict=True) if s == best])


def backoff(attempt: int, base: float, rng: random.Random, cap: float = 2.0) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): exponential with full jitter."""
    return rng.uniform(0, min(cap, base * 2 ** (attempt - 1)))
