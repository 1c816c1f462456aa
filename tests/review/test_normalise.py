from __future__ import annotations

import random

import pytest

from modelgrid.review.normalise import DROPPED, SEVERAL, fold, fold_each, normalise, normalise_char


def sample(rng: random.Random, length: int, planes: list[tuple[int, int]]) -> str:
    return "".join(chr(rng.randint(*rng.choice(planes))) for _ in range(length))


ASCII = [(0, 127)]
BMP = [(0, 127), (0x80, 0x2FF), (0x3000, 0x30FF), (0x4E00, 0x9FFF), (0xFF00, 0xFFEF)]
EVERYTHING = [*BMP, (0x80, 0xD7FF), (0xE000, 0xFFFF), (0x10000, 0x10FFFF), (0x1D400, 0x1D7FF)]


@pytest.mark.parametrize(
    ("planes", "lengths"),
    [
        (ASCII, (0, 300)),  # bytes.translate
        (BMP, (0, 127)),  # short: one look-up a character
        (BMP, (128, 200)),  # per run of non-ASCII characters
        (BMP, (256, 1200)),  # long: numpy
        (EVERYTHING, (0, 1200)),  # beyond the plane, expansions (ligatures, ß): per run
    ],
)
def test_fold_is_the_normalised_text(
    planes: list[tuple[int, int]], lengths: tuple[int, int]
) -> None:
    rng = random.Random(11)
    for _ in range(300):
        text = sample(rng, rng.randint(*lengths), planes)
        assert fold(text) == normalise(text).text


def test_fold_on_known_evasions() -> None:
    assert fold("Ｂａｄ Ｗｏｒｄ") == "badword"
    assert fold("b.a-d w_o r\u200bd") == "badword"
    assert fold("洗錢" * 200) == "洗钱" * 200  # long enough for the numpy path
    assert fold("ﬁne Straße " * 40) == "finestrasse" * 40  # expansions leave that path
    assert fold("𝐛𝐚𝐝 🙂 word") == "badword"  # beyond the plane: bold letters fold, emoji go


@pytest.mark.parametrize(
    "text",
    [
        "Mostly ASCII prose — with a few µs, × and “quotes” " * 12,  # the encoder's handler
        "中文的段落，包含標點。" * 40,  # long and mostly beyond ASCII: numpy
        "长文本里有一个扩展字\ufa6c和连字ﬃ"
        * 30,  # numpy cannot: folds beyond the plane, or into several
        "emoji \U0001f600 and 𝐁old " * 20 + "中" * 300,  # beyond the plane
        "lone \ud800 surrogate 中文" * 30,
    ],
)
def test_fold_agrees_with_normalise_on_every_path(text: str) -> None:
    assert fold(text) == normalise(text).text
    assert fold(text[:40]) == normalise(text[:40]).text


@pytest.mark.parametrize("planes", [ASCII, BMP, EVERYTHING])
def test_fold_each_is_each_characters_fold_one_for_one(planes: list[tuple[int, int]]) -> None:
    rng = random.Random(13)
    for _ in range(300):
        text = sample(rng, rng.randint(0, 80), planes)
        each = fold_each(text)
        assert len(each) == len(text)
        for original, folded in zip(text, each, strict=True):
            expected = normalise_char(original)
            if folded == DROPPED:
                assert expected == ""
            elif folded == SEVERAL:
                assert len(expected) > 1
            else:
                assert folded == expected
        if SEVERAL not in each:
            assert each.replace(DROPPED, "") == fold(text)


def test_fold_each_marks() -> None:
    assert fold_each("A-b") == "a\0b"
    assert fold_each("ﬁ 中") == SEVERAL + DROPPED + "中"
    assert fold_each("🙂𝐚") == DROPPED + "a"
