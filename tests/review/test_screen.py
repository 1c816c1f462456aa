"""Reviewing whole texts and streams against a policy."""

from __future__ import annotations

import re

import pytest

from modelgrid.review.config import PolicySettings
from modelgrid.review.policy import compile_policy
from modelgrid.review.screen import SCAN_EVERY, SCAN_WAIT, OutputFilter, _unsplit, screen
from modelgrid.review.terms import Term, TermMatcher
from modelgrid.review.verdict import Action, Policy

MATCHER = TermMatcher(
    [Term("bomb making", "A.1.4"), Term("phishing", "A.4.7"), Term("洗钱", "A.1.8")]
)


def output_policy(**settings: object) -> Policy:
    policy = compile_policy(PolicySettings.model_validate(settings)).output
    assert policy is not None
    return policy


def run(text: str, size: int, policy: Policy | None = None) -> tuple[str, OutputFilter]:
    review = OutputFilter(MATCHER, policy or output_policy())
    out = [review.feed(text[i : i + size]) for i in range(0, len(text), size)]
    return "".join(out) + review.finish(), review


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 1000])
def test_a_clean_stream_comes_out_whole_whatever_the_chunking(size: int) -> None:
    text = "A quiet answer about gardens, 2024 prices and the number 42."
    shown, review = run(text, size)
    assert shown == text
    assert review.refused is None and review.verdict.action is Action.ALLOW


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
def test_a_refused_term_split_across_chunks_is_never_released(size: int) -> None:
    shown, review = run("First part. Then b o m b   m a k i n g follows, and more.", size)
    assert review.refused is not None
    assert shown == "First part. Then "[: len(shown)] and "b o" not in shown


@pytest.mark.parametrize("size", [1, 3, 6])
def test_chinese_terms_split_across_chunks_are_caught(size: int) -> None:
    shown, review = run("他们讨论了洗錢的问题", size)  # traditional 錢 folds onto 钱
    assert review.refused is not None and "洗" not in shown


@pytest.mark.parametrize("size", [1, 2, 4, 9])
def test_personal_information_split_across_chunks_is_masked(size: int) -> None:
    text = "Ring +86 138 0013 8000, card 6222 0212 3456 7893 or bob.lee@example.cn today"
    shown, review = run(text, size)
    assert "0013" not in shown and "bob.lee@" not in shown
    assert "b*****e@example.cn" in shown and "7893" in shown
    assert review.verdict.action is Action.MASK


def test_a_stream_shows_its_first_words_as_soon_as_they_are_settled() -> None:
    review = OutputFilter(MATCHER, output_policy())
    assert review.feed("Hello") == ""  # may still grow into an e-mail address
    assert review.feed(" there") == "Hello "


def test_after_its_first_words_a_stream_is_judged_by_size_or_by_time() -> None:
    now = [0.0]
    review = OutputFilter(MATCHER, output_policy(), clock=lambda: now[0])
    assert review.feed("One ") == "One "
    now[0] = SCAN_WAIT / 2
    assert review.feed("two ") == ""  # neither SCAN_EVERY characters nor SCAN_WAIT yet
    now[0] = SCAN_WAIT
    assert review.feed("three ") == "two three "
    assert review.feed("x" * SCAN_EVERY + " ") == "x" * SCAN_EVERY + " "


def test_a_flagged_term_passes_and_is_marked_for_review() -> None:
    shown, review = run("Beware of phishing links.", 3)
    assert shown == "Beware of phishing links."
    assert review.verdict.review and review.verdict.action is Action.FLAG


def test_personal_information_may_refuse_instead() -> None:
    shown, review = run("Write to alice@example.com now", 4, output_policy(output_pii="refuse"))
    assert review.refused is not None and "alice" not in shown


def test_a_word_that_merely_contains_a_term_is_not_a_hit() -> None:
    assert screen(MATCHER, "The bombmakingly odd phishingrod", output_policy()).verdict.action is (
        Action.ALLOW
    )


def test_whole_text_screen_masks_and_refuses() -> None:
    masked = screen(MATCHER, "id 11010519491231002X here", output_policy())
    assert masked.text == "id **************002X here" and masked.verdict.action is Action.MASK
    assert screen(MATCHER, "BOMB MAKING", output_policy()).verdict.action is Action.REFUSE


@pytest.mark.parametrize(
    "text",
    [
        "call +86 138",
        "abc 12 -",
        "a+ 12",
        "x -",
        "mail bob.lee@exa",
        "id 1101 0519",
        "１３８ ００",
        "no",
    ],
)
def test_stream_holds_back_what_may_grow_into_personal_information(text: str) -> None:
    # What the patterns this replaced found: a trailing number (after '+'), a trailing word.
    number = re.search(r"\+?[0-9０-９][0-9０-９ \-]*$", text)
    word = re.search(r"[A-Za-z0-9._%+\-@]+$", text)
    expected = min(m.start() if m else len(text) for m in (number, word))
    assert _unsplit(text, len(text)) == expected
