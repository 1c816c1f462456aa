import pytest

from modelgrid.ratelimit import gcra


def test_a_burst_up_to_the_limit_then_one_request_per_interval() -> None:
    tat, now, decisions = 0.0, 100.0, []
    for _ in range(4):
        decision, tat = gcra(tat, now, limit=3, period=60)
        decisions.append(decision)
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[3].retry_after == pytest.approx(20.0)  # one interval: 60 s / 3
    assert decisions[2].reset_after == pytest.approx(60.0)
    later, tat = gcra(tat, now + 20.0, limit=3, period=60)
    assert later.allowed and later.remaining == 0


def test_a_refusal_does_not_consume() -> None:
    tat = 0.0
    for _ in range(2):
        _, tat = gcra(tat, 0.0, limit=2, period=10)
    refused, after = gcra(tat, 0.0, limit=2, period=10)
    assert not refused.allowed and after == tat


def test_idle_time_restores_the_burst_but_no_more() -> None:
    _, tat = gcra(0.0, 0.0, limit=5, period=60)
    decision, _ = gcra(tat, 1_000.0, limit=5, period=60)
    assert decision.allowed and decision.remaining == 4


def test_a_cost_counts_as_that_many_requests() -> None:
    decision, tat = gcra(0.0, 0.0, limit=100, period=60, cost=40)
    assert decision.allowed and decision.remaining == 60
    decision, tat = gcra(tat, 0.0, limit=100, period=60, cost=40)
    assert decision.allowed and decision.remaining == 20
    refused, _ = gcra(tat, 0.0, limit=100, period=60, cost=40)
    assert not refused.allowed and refused.retry_after == pytest.approx(12.0)  # 20 tokens' worth
