"""A guard model's answers, parsed and mapped to TC260-003 risks."""

from __future__ import annotations

from modelgrid.review.guard import Finding, hits_of, parse_answer


def test_llama_guard_answers() -> None:
    assert parse_answer("safe") == Finding(False, ())
    assert parse_answer("\n\nunsafe\nS1,S10") == Finding(True, ("S1", "S10"))
    assert parse_answer("unsafe") == Finding(True, ())


def test_qwen3guard_answers() -> None:
    answer = "Safety: Unsafe\nCategories: Violent, Jailbreak"
    assert parse_answer(answer) == Finding(True, ("Violent", "Jailbreak"))
    assert not parse_answer("Safety: Controversial\nCategories: None").unsafe
    assert not parse_answer("Safety: Safe").unsafe


def test_categories_map_to_risks_with_the_operators_table_first() -> None:
    hits = hits_of(Finding(True, ("S9", "violent", "S99")), {"violent": "A.1.4"})
    assert [h.risk for h in hits] == ["A.1.4", "A.1.4", "A.1.8"]
    assert hits_of(Finding(False, ("S1",)), {}) == []
