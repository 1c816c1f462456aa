import random

from modelgrid.balancing import Breaker, DeploymentState, backoff, choose


def state(
    name: str, weight: float = 1.0, inflight: int = 0, latency: float | None = None
) -> DeploymentState:
    return DeploymentState(name, weight, Breaker(threshold=2, cooldown=10), inflight, latency)


def test_breaker_opens_after_threshold_and_probes_once_after_cooldown() -> None:
    b = Breaker(threshold=2, cooldown=10)
    b.on_failure(0)
    assert b.state(0) == "closed"
    b.on_failure(1)
    assert b.state(1) == "open" and not b.allows(5)
    assert b.state(11) == "half_open" and b.allows(11)
    b.on_attempt(11)
    assert not b.allows(11)  # one probe at a time
    b.on_failure(12)
    assert b.state(12) == "open"  # the probe failed: open again for a full cooldown
    b.on_attempt(22)
    b.on_success(22)
    assert b.state(22) == "closed" and b.failures == 0


def test_success_resets_the_failure_count() -> None:
    b = Breaker(threshold=2, cooldown=10)
    b.on_failure(0)
    b.on_success(0)
    b.on_failure(1)
    assert b.state(1) == "closed"


def test_a_success_that_started_before_the_breaker_opened_does_not_close_it() -> None:
    # Under concurrency, attempts already in flight finish after the breaker opened; their
    # successes must not undo it (found by benchmarks/reliability.py).
    b = Breaker(threshold=2, cooldown=10)
    b.on_failure(1)
    b.on_failure(2)
    b.on_success(0.5)
    assert b.state(3) == "open"
    b.on_attempt(12)
    b.on_success(12)  # the probe, begun after the cooldown
    assert b.state(12) == "closed"


def test_least_inflight_per_weight() -> None:
    a, b = state("a", inflight=3), state("b", weight=2, inflight=3)
    assert choose([a, b], "least_inflight", 0, random.Random(1)) is b  # (3+1)/2 < (3+1)/1


def test_weighted_follows_the_weights() -> None:
    a, b = state("a", weight=1), state("b", weight=3)
    rng = random.Random(7)
    picks = [choose([a, b], "weighted", 0, rng) for _ in range(4000)]
    share = sum(p is b for p in picks) / len(picks)
    assert 0.72 < share < 0.78


def test_latency_tries_unmeasured_first_then_the_fastest() -> None:
    slow, fast, new = state("s", latency=0.5), state("f", latency=0.1), state("n")
    assert choose([slow, fast, new], "latency", 0, random.Random(1)) is new
    assert choose([slow, fast], "latency", 0, random.Random(1)) is fast


def test_open_breakers_and_tried_deployments_are_avoided() -> None:
    a, b = state("a"), state("b")
    a.breaker.on_failure(0)
    a.breaker.on_failure(0)
    assert choose([a, b], "least_inflight", 1, random.Random(1)) is b
    assert (
        choose([a, b], "least_inflight", 1, random.Random(1), frozenset({"b"})) is b
    )  # only one left
    b.breaker.on_failure(0)
    b.breaker.on_failure(0)
    assert choose([a, b], "least_inflight", 1, random.Random(1)) is None


def test_moving_average_of_latency() -> None:
    d = state("d")
    d.observe_latency(1.0)
    d.observe_latency(0.0)
    assert d.latency == 0.8


def test_backoff_grows_with_full_jitter_and_a_cap() -> None:
    rng = random.Random(3)
    for attempt in range(1, 8):
        delays = [backoff(attempt, 0.1, rng, cap=1.0) for _ in range(200)]
        assert min(delays) >= 0 and max(delays) <= min(1.0, 0.1 * 2 ** (attempt - 1))
