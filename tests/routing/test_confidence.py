"""A cascade's confidence signals and shadow evaluation's verdicts, by hand-computed cases."""

from __future__ import annotations

import math

import pytest

from modelgrid.routing.auto import Auto
from modelgrid.routing.confidence import (
    answer_key,
    judged,
    same_answer,
    sampled,
    samples_needed,
    settled,
    token_confidence,
)


def test_token_confidence_is_the_geometric_mean_probability() -> None:
    assert token_confidence([math.log(0.5), math.log(0.125)]) == pytest.approx(0.25)
    assert token_confidence([]) == 0.0


def test_answers_agree_by_their_last_number_or_their_words() -> None:
    assert answer_key("3 + 4 = 7, so the answer is 1,200.0") == "1200"
    assert answer_key("Paris, of course!") == answer_key("paris of COURSE")
    assert same_answer("So she has 18 apples.", "18")
    assert not same_answer("So she has 18 apples.", "17")
    assert same_answer("The capital is Paris.", "paris")
    assert not same_answer("anything", "")


def test_agreement_stops_as_soon_as_the_outcome_is_known() -> None:
    needed = samples_needed(3, 1.0)
    assert needed == 3 and samples_needed(3, 0.5) == 2 and samples_needed(3, 0.0) == 1
    assert settled(["4"], 3, needed) is None
    assert settled(["4", "5"], 3, needed) is False  # three of three can no longer agree
    assert settled(["4", "4", "4"], 3, needed) is True
    assert settled(["4", "4"], 3, 2) is True  # two of three: stop after two


def test_the_agreement_decision_keeps_the_small_model_only_when_enough_agree() -> None:
    auto = Auto("a", "small", "large", None, 2 / 3, "cascade", "agreement", samples=3)
    assert auto.agree(["x"]) is None
    kept = auto.agree(["x", "x"])
    assert kept is not None and kept.model == "small" and not kept.escalated
    gone = auto.agree(["x", "y", "z"])
    assert gone is not None and gone.model == "large" and gone.score == pytest.approx(1 / 3)


def test_a_judge_says_yes_or_no_and_anything_else_is_no_verdict() -> None:
    assert judged("Yes.") is True and judged(" no, it is wrong") is False
    assert judged("Maybe") is None and judged("") is None


def test_shadow_sampling_takes_the_share_asked_for_the_same_way_everywhere() -> None:
    ids = [f"{i * 2654435761 % 2**32:08x}" + "0" * 24 for i in range(10_000)]
    share = sum(sampled(uid, 0.1) for uid in ids) / len(ids)
    assert 0.09 < share < 0.11
    assert not any(sampled(uid, 0.0) for uid in ids) and all(sampled(uid, 1.0) for uid in ids)
