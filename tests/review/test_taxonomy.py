from __future__ import annotations

from modelgrid.review.taxonomy import CLASSES, RISKS, RISKS_BY_CODE, is_risk_code, risks_in


def test_structure() -> None:
    assert [c.code for c in CLASSES] == ["A.1", "A.2", "A.3", "A.4", "A.5"]
    assert len(RISKS) == 31
    assert [len(risks_in(c.code)) for c in CLASSES] == [8, 9, 5, 7, 2]
    assert len(risks_in("A.1")) + len(risks_in("A.2")) == 17


def test_codes_unique_and_named() -> None:
    assert len(RISKS_BY_CODE) == 31
    assert all(r.name_en and r.name_zh for r in RISKS)
    assert is_risk_code("A.2.9") and not is_risk_code("A.2.10")
