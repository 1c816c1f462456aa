"""Shingles: normalisation, words for spaced scripts, characters for Chinese, stable hashes."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np

from modelgrid.provenance.shingles import (
    jaccard,
    normalise,
    shingle_hashes,
    shingle_hashes_many,
    tokens,
)


def test_text_is_normalised_and_cut_into_words_and_cjk_characters() -> None:
    assert normalise("ＡＢＣ Straße") == "abc strasse"
    assert tokens("Hello, World! snake_case 3.14") == ["hello", "world", "snake", "case", "3", "14"]
    assert tokens("本内容由AI生成。") == ["本", "内", "容", "由", "ai", "生", "成"]
    assert tokens("ひらがな、カタカナ") == ["ひ", "ら", "が", "な", "カ", "タ", "カ", "ナ"]
    assert tokens("한국어 문장") == ["한국어", "문장"]  # Hangul is spaced: words
    assert tokens("  ... !!! ") == []


def test_punctuation_case_and_width_do_not_change_the_shingles() -> None:
    plain = shingle_hashes("the quick brown fox jumps over the lazy dog")
    assert np.array_equal(plain, shingle_hashes("The QUICK brown fox -- jumps over, the lazy dog!"))
    assert np.array_equal(
        plain, shingle_hashes("ｔｈｅ ｑｕｉｃｋ brown fox jumps over the lazy dog")
    )


def test_shingles_are_ordered_distinct_and_sorted() -> None:
    hashes = shingle_hashes("a b c d a b c d")
    assert len(hashes) == 4  # abc bcd cda dab, then abc and bcd again
    assert list(hashes) == sorted(set(hashes.tolist()))
    assert not np.array_equal(shingle_hashes("a b c"), shingle_hashes("c b a"))


def test_short_texts_are_one_shingle_and_empty_ones_none() -> None:
    assert len(shingle_hashes("hello")) == 1
    assert len(shingle_hashes("hello world")) == 1
    assert len(shingle_hashes("?!")) == 0


def test_hashes_are_the_same_in_another_process() -> None:
    # They are stored (as band hashes): Python's salted hash() would differ per process.
    code = "from modelgrid.provenance.shingles import shingle_hashes as s; print(s('one two three four').tolist())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(shingle_hashes("one two three four").tolist())


def test_jaccard() -> None:
    a = shingle_hashes("w1 w2 w3 w4 w5 w6")  # 4 shingles
    b = shingle_hashes("w1 w2 w3 w4 x5 x6")  # shares 2 of its 4
    assert jaccard(a, a) == 1.0
    assert jaccard(a, b) == 2 / 6
    assert jaccard(a, shingle_hashes("")) == 0.0


def test_many_texts_shingled_at_once_as_each_alone() -> None:
    rng = random.Random(3)
    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "a",
        "lazy",
        "dog",
        "你",
        "好",
        "世",
        "界",
    ]
    texts = [" ".join(rng.choices(words, k=rng.randint(0, 30))) for _ in range(300)]
    texts += ["", "one", "one two", "!!!"]
    many = shingle_hashes_many(texts)
    assert [set(s.tolist()) for s in many] == [set(shingle_hashes(t).tolist()) for t in texts]
    tiny = shingle_hashes_many(["a", "b"])  # fewer tokens in all than a shingle has
    assert [s.tolist() for s in tiny] == [shingle_hashes(t).tolist() for t in ("a", "b")]
