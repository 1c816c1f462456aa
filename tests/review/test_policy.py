"""Policy settings to verdict rules, and two policies at once."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from modelgrid.review.config import BUILTIN_POLICIES, PolicySettings
from modelgrid.review.policy import compile_policy, strictest
from modelgrid.review.verdict import Action


def test_the_default_refuses_a1_and_a2_and_flags_the_rest() -> None:
    policy = compile_policy(BUILTIN_POLICIES["default"])
    assert policy.input is not None and policy.output is not None
    assert policy.input.for_risk("A.1.4") is Action.REFUSE
    assert policy.input.for_risk("A.2.5") is Action.REFUSE
    assert policy.input.for_risk("A.4.7") is Action.FLAG
    assert policy.input.for_pii("phone") is Action.ALLOW
    assert policy.output.for_pii("phone") is Action.MASK


def test_off_reviews_nothing() -> None:
    assert not compile_policy(BUILTIN_POLICIES["off"]).active


def test_the_stricter_rule_of_two_policies_wins_everywhere() -> None:
    lenient = compile_policy(
        PolicySettings(risks={"A.1": "flag", "A.3.1": "allow"}, input_pii="allow")
    )
    other = compile_policy(
        PolicySettings(
            risks={"A.1.4": "refuse", "A.3": "flag"},
            default_risk="allow",
            input_pii="mask",
            output=False,
        )
    )
    both = strictest(lenient, other)
    assert both.input is not None and both.output is not None
    assert both.input.for_risk("A.1.4") is Action.REFUSE  # the other's risk entry
    assert both.input.for_risk("A.1.7") is Action.FLAG  # the lenient class entry
    assert both.input.for_risk("A.3.1") is Action.FLAG  # a class entry beats an allow
    assert both.input.for_pii("email") is Action.MASK
    assert both.output.for_risk("A.1.7") is Action.FLAG  # only one reviews output: it does


def test_unknown_codes_are_refused_in_settings() -> None:
    with pytest.raises(ValidationError, match=r"A\.9"):
        PolicySettings(risks={"A.9": "refuse"})
