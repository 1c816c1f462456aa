from __future__ import annotations

import random
from pathlib import Path

import pytest

from modelgrid.review.data import sample_terms_path
from modelgrid.review.normalise import normalise
from modelgrid.review.terms import StreamScanner, Term, TermMatcher, load_terms


@pytest.fixture
def matcher() -> TermMatcher:
    return TermMatcher(
        [
            Term("scam", "A.4.7"),
            Term("ass", "A.2.9"),
            Term("电信诈骗", "A.1.7"),
            Term("money laundering", "A.1.8"),
        ]
    )


def terms_of(matcher: TermMatcher, text: str) -> list[str]:
    return [h.term for h in matcher.find(text)]


@pytest.mark.parametrize(
    "text",
    [
        "this is a s c a m ok",
        "this is a s.c-a*m ok",
        "this is a s\u200bc\u200ba\u200bm",
        "this is a ｓｃａｍ",
        "this is a ScAm",
        "this is a ѕсаm",  # Cyrillic look-alikes
        "this is a SCΑM",  # Greek capital alpha
    ],
)
def test_english_evasions_caught(matcher: TermMatcher, text: str) -> None:
    assert terms_of(matcher, text) == ["scam"]


@pytest.mark.parametrize(
    "text", ["警惕電信詐騙", "警惕电 信 诈 骗", "警惕电·信·诈·骗", "警惕電-信-詐-騙"]
)
def test_chinese_evasions_caught(matcher: TermMatcher, text: str) -> None:
    assert terms_of(matcher, text) == ["电信诈骗"]


def test_hit_span_points_into_original_text(matcher: TermMatcher) -> None:
    text = "beware: Ｓ c ａ m here"
    (hit,) = matcher.find(text)
    assert text[hit.start : hit.end] == "Ｓ c ａ m" == hit.matched
    assert hit.risk == "A.4.7"


def test_phrase_with_spaces_matches(matcher: TermMatcher) -> None:
    assert terms_of(matcher, "no Money-Laundering here") == ["money laundering"]


@pytest.mark.parametrize(
    "text",
    [
        "she studied scientific camping",  # s, c, a, m present but apart
        "电话信用卡的诈术骗局",  # 电…信…诈…骗 separated by other characters
        "first class passes",  # "ass" inside words
        "scams",  # longer word: whole words only for ASCII terms
    ],
)
def test_ordinary_text_not_matched(matcher: TermMatcher, text: str) -> None:
    assert matcher.find(text) == []


def test_ascii_whole_word(matcher: TermMatcher) -> None:
    assert terms_of(matcher, "what an ass.") == ["ass"]
    assert terms_of(matcher, "classic") == []
    # CJK context around an ASCII term is a boundary
    assert terms_of(matcher, "这是scam吗") == ["scam"]


def test_stream_split_term_caught_once(matcher: TermMatcher) -> None:
    scanner = StreamScanner(matcher)
    chunks = ["a warning: this is a sc", "am and", " more text 电信", "诈", "骗 end"]
    hits = [h for c in chunks for h in scanner.feed(c)] + scanner.finish()
    assert [h.term for h in hits] == ["scam", "电信诈骗"]
    full = "".join(chunks)
    assert [full[h.start : h.end] for h in hits] == ["scam", "电信诈骗"]


def test_stream_defers_ascii_term_until_boundary_known(matcher: TermMatcher) -> None:
    scanner = StreamScanner(matcher)
    assert scanner.feed("the scam") == []  # could still become "scams"
    assert [h.term for h in scanner.feed("s are")] == []
    scanner2 = StreamScanner(matcher)
    assert scanner2.feed("the scam") == []
    assert [h.term for h in scanner2.finish()] == ["scam"]


def test_stream_many_small_chunks_each_hit_once(matcher: TermMatcher) -> None:
    text = "scam! " * 5 + "电信诈骗。" * 3
    scanner = StreamScanner(matcher)
    hits = [h for ch in text for h in scanner.feed(ch)] + scanner.finish()
    assert [h.term for h in hits].count("scam") == 5
    assert [h.term for h in hits].count("电信诈骗") == 3
    assert len({(h.start, h.end) for h in hits}) == len(hits)
    assert all(text[h.start : h.end] == h.matched for h in hits)


def test_stream_finds_what_the_whole_text_holds_however_it_is_cut(matcher: TermMatcher) -> None:
    # Evasions on every folding path: separators, full-width, traditional characters, bold
    # letters beyond the plane, a ligature that folds into several, emoji that fold into none.
    text = "ok s.c.a.m, Ｓｃａｍ and 𝐬𝐜𝐚𝐦 🙂 then 電信詐騙 — a ﬁne sc🙂am; classic sca-\nm"
    whole = [(h.term, h.start, h.end) for h in matcher.find(text)]
    assert len(whole) == 6
    rng = random.Random(5)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(text)), rng.randint(1, 12)))
        chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        scanner = StreamScanner(matcher)
        hits = [h for c in chunks for h in scanner.feed(c)] + scanner.finish()
        assert sorted((h.term, h.start, h.end) for h in hits) == sorted(whole), chunks


def test_stream_carries_over_only_a_tail_that_may_begin_a_term(matcher: TermMatcher) -> None:
    scanner = StreamScanner(matcher)
    scanner.feed("the weather is fine")  # no tail of its fold begins a term
    assert scanner.settled == len("the weather is fine")
    scanner.feed(" and money la")
    assert scanner.settled == len("the weather is fine and ")  # "money la..." may go on
    scanner.feed("ter, the s")
    assert scanner.settled == len("the weather is fine and money later, the ")
    scanner.feed("ea, a s")  # "as" may become "ass"
    assert scanner.settled == len("the weather is fine and money later, the sea, ")


def test_stream_with_near_misses_finds_what_the_whole_text_holds(matcher: TermMatcher) -> None:
    # Texts full of terms' beginnings, whole terms and words around them: the carry-over is
    # short, and must still reach back as far as any hit to come.
    pieces = ["sc", "a", "m", "s", "ass", " ", "-", "money", " laun", "dering", "电信", "诈", "骗"]
    rng = random.Random(11)
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 30)))
        whole = sorted((h.term, h.start, h.end) for h in matcher.find(text))
        cuts = sorted(set(rng.choices(range(1, max(2, len(text))), k=rng.randint(0, 8))))
        chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        scanner = StreamScanner(matcher)
        hits = [h for c in chunks for h in scanner.feed(c)] + scanner.finish()
        assert sorted((h.term, h.start, h.end) for h in hits) == whole, chunks


def test_load_plain_and_csv(tmp_path: Path) -> None:
    plain = tmp_path / "t.txt"
    plain.write_text("# comment\nscam\tA.4.7\n\n杀猪盘\n", encoding="utf-8")
    assert load_terms(plain) == [Term("scam", "A.4.7"), Term("杀猪盘", "A.1.8")]
    csv_file = tmp_path / "t.csv"
    csv_file.write_text("term,risk\nfraud,A.4.7\n洗钱,A.1.8\n", encoding="utf-8")
    assert load_terms(csv_file) == [Term("fraud", "A.4.7"), Term("洗钱", "A.1.8")]


def test_load_rejects_unknown_risk(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("scam\tZ.9\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"Z\.9"):
        load_terms(bad)


def test_sample_list_ships_and_matches() -> None:
    terms = load_terms(sample_terms_path())
    assert len(terms) >= 30
    assert any("\u4e00" <= t.text[0] <= "\u9fff" for t in terms)
    matcher = TermMatcher(terms)
    assert {h.term for h in matcher.find("小心殺豬盤和 P-H-I-S-H-I-N-G")} == {"杀猪盘", "phishing"}


def test_load_10000_terms(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    lines = [f"term{i:05d}x\tA.1.{i % 8 + 1}" for i in range(5000)]
    lines += [f"词{chr(0x4E00 + i)}{chr(0x5000 + i)}\tA.2.{i % 9 + 1}" for i in range(5000)]
    path.write_text("\n".join(lines), encoding="utf-8")
    progress: list[tuple[int, int]] = []
    matcher = TermMatcher.from_file(path, progress=lambda d, t: progress.append((d, t)))
    assert matcher.size == 10000
    assert progress[-1] == (10000, 10000)
    assert len(progress) >= 10
    hits = matcher.find(f"x TERM04321X y 词{chr(0x4E00 + 7)}{chr(0x5000 + 7)}")
    assert [(h.term, h.risk) for h in hits] == [
        ("term04321x", "A.1.2"),
        (f"词{chr(0x4E00 + 7)}{chr(0x5000 + 7)}", "A.2.8"),
    ]


def test_normalise_keeps_origin_map() -> None:
    norm = normalise("Ａ b\u200bc")
    assert norm.text == "abc"
    assert norm.origin == (0, 2, 4)
