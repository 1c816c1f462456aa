"""The review's shell: term lists loaded and reloaded, policies resolved per plan and model."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelgrid.review.config import ReviewSettings
from modelgrid.review.reviewer import Reviewer
from modelgrid.review.verdict import Action

pytestmark = pytest.mark.anyio


async def test_the_sample_list_loads_by_default() -> None:
    reviewer = Reviewer(ReviewSettings(reload_seconds=0))
    await reviewer.start()
    assert reviewer.matcher.size > 20
    assert reviewer.matcher.find("网络赌博")[0].risk == "A.1.8"
    await reviewer.close()


async def test_a_changed_list_replaces_the_matcher_and_a_broken_one_keeps_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "terms.csv"
    path.write_text("term,risk\nalpha term,A.1.7\n", encoding="utf-8")
    reviewer = Reviewer(ReviewSettings(terms=[str(path)], reload_seconds=0))
    await reviewer.start()
    assert reviewer.matcher.find("an alpha term")
    assert not await reviewer.reload()  # unchanged: nothing read
    path.write_text("term,risk\nbeta term,A.1.7\nmore,A.1.7\n", encoding="utf-8")
    assert await reviewer.reload()
    assert not reviewer.matcher.find("an alpha term") and reviewer.matcher.find("a beta term")
    path.write_text("term,risk\ngamma,Z.9\n", encoding="utf-8")  # an unknown risk code
    assert not await reviewer.reload()
    assert reviewer.matcher.find("a beta term")  # the last good list stays
    await reviewer.close()


def test_plan_and_model_policies_combine() -> None:
    reviewer = Reviewer(ReviewSettings())
    default = reviewer.policies("default")
    strict = reviewer.policies("default", ("strict",))
    assert default.input is not None and strict.input is not None
    assert default.input.for_risk("A.4.7") is Action.FLAG
    assert strict.input.for_risk("A.4.7") is Action.REFUSE
    assert not reviewer.policies("off").active
    assert not Reviewer(ReviewSettings(enabled=False)).policies("strict").active
