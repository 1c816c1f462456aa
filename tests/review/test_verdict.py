from __future__ import annotations

from modelgrid.review.pii import PiiSpan
from modelgrid.review.terms import Hit
from modelgrid.review.verdict import Action, Policy, decide


def hit(risk: str) -> Hit:
    return Hit("t", risk, 0, 1, "t")


PHONE = PiiSpan("phone", 5, 16)


def test_nothing_found_allows() -> None:
    v = decide([], [], Policy())
    assert v.action is Action.ALLOW and v.reasons == () and not v.review


def test_severity_order() -> None:
    assert Action.REFUSE > Action.MASK > Action.FLAG > Action.ALLOW
    policy = Policy(risks={"A.2": Action.FLAG, "A.1": Action.REFUSE})
    assert decide([hit("A.2.5")], [], policy).action is Action.FLAG
    assert decide([hit("A.2.5")], [PHONE], policy).action is Action.MASK
    assert decide([hit("A.2.5"), hit("A.1.7")], [PHONE], policy).action is Action.REFUSE


def test_flag_survives_under_mask() -> None:
    v = decide([hit("A.2.5")], [PHONE], Policy(risks={"A.2": Action.FLAG}))
    assert v.action is Action.MASK
    assert v.review
    assert v.mask_spans == (PHONE,)


def test_risk_code_overrides_class() -> None:
    policy = Policy(risks={"A.1": Action.REFUSE, "A.1.7": Action.ALLOW})
    assert decide([hit("A.1.7")], [], policy).action is Action.ALLOW
    assert decide([hit("A.1.4")], [], policy).action is Action.REFUSE
    assert decide([hit("A.3.1")], [], policy).action is Action.REFUSE  # default_risk


def test_pii_policy() -> None:
    assert decide([], [PHONE], Policy(pii={"phone": Action.ALLOW})).action is Action.ALLOW
    refused = decide([], [PHONE], Policy(pii={"phone": Action.REFUSE}))
    assert refused.action is Action.REFUSE
    assert refused.reasons[0].source == "pii:phone"
