"""Index terms, passages and readers (pure, or files in memory)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from modelgrid.knowledge.chunking import Section, passages
from modelgrid.knowledge.readers import UnreadableDocument, read
from modelgrid.knowledge.tokens import length, terms

from .pdfs import pdf_of


def test_terms_are_words_and_chinese_bigrams() -> None:
    assert terms("The Refund policy: 30 days!") == ["refund", "policy", "30", "day"]
    assert terms("refunds policies mergers glass bus") == [
        "refund",
        "policy",
        "merger",
        "glass",
        "bus",
    ]
    assert terms("退货政策") == ["退货", "货政", "政策"]
    assert terms("ＡＢＣ refund") == ["abc", "refund"]  # full-width read as ASCII
    assert terms("x" * 100) == ["x" * 64]
    assert length("退货 policy") == 3


def test_passages_pack_paragraphs_and_overlap_without_crossing_sections() -> None:
    paragraphs = [f"Paragraph {i} " + "word " * 30 for i in range(10)]
    sections = [
        Section("Returns", "\n\n".join(paragraphs)),
        Section("Shipping", "Ships in 2 days."),
    ]
    cut = passages(sections, size=100, overlap=40)
    returns = [p for p in cut if p.heading == "Returns"]
    assert all(length(p.text) <= 100 for p in returns)
    assert len(returns) >= 4
    for before, after in itertools.pairwise(returns):
        # each passage begins with the last paragraph of the one before
        assert before.text.split("\n\n")[-1] == after.text.split("\n\n")[0]
    assert [p.text for p in cut if p.heading == "Shipping"] == ["Ships in 2 days."]
    every = "\n\n".join(p.text for p in returns)
    assert all(paragraph.strip() in every for paragraph in paragraphs)


def test_a_long_sentence_and_long_chinese_text_are_cut_too() -> None:
    cut = passages([Section("", "word " * 450)], size=200, overlap=0)
    assert [length(p.text) for p in cut] == [200, 200, 50]
    chinese = "退货需要在三十天内申请。" * 40  # 480 characters, no spaces
    cut = passages([Section("", chinese)], size=100, overlap=0)
    assert all(length(p.text) <= 100 for p in cut) and "".join(p.text for p in cut) == chinese


def test_readers_cut_markdown_and_html_at_headings() -> None:
    md = b"# Shop FAQ\n\nIntro.\n\n## Returns\n\nWithin [30 days](https://x).\n\n## Shipping\n\nFast."
    doc = read(Path("faq.md"), md)
    assert doc.title == "Shop FAQ"
    assert [(s.heading, s.text.strip()) for s in doc.sections] == [
        ("Shop FAQ", "Intro."),
        ("Returns", "Within 30 days."),
        ("Shipping", "Fast."),
    ]
    html = (
        b"<html><head><title>Help</title><script>x=1</script></head><body>"
        b"<h2>Returns</h2><p>Within 30 days.</p><h2>Shipping</h2><p>Fast.</p></body></html>"
    )
    doc = read(Path("help.html"), html)
    assert doc.title == "Help"
    assert [(s.heading, s.text.strip()) for s in doc.sections] == [
        ("Returns", "Within 30 days."),
        ("Shipping", "Fast."),
    ]
    assert "x=1" not in " ".join(s.text for s in doc.sections)


def test_a_pdf_is_read_page_by_page() -> None:
    doc = read(Path("manual.pdf"), pdf_of(["Page one text.", "Refunds take 5 days."], "Manual"))
    assert doc.title == "Manual" and doc.pages == 2
    assert [(s.page, s.text.strip()) for s in doc.sections] == [
        (1, "Page one text."),
        (2, "Refunds take 5 days."),
    ]


def test_unreadable_files_are_said_to_be() -> None:
    with pytest.raises(UnreadableDocument, match="not a readable PDF"):
        read(Path("broken.pdf"), b"%PDF-1.4 nonsense")
    with pytest.raises(UnreadableDocument, match="not UTF-8"):
        read(Path("x.txt"), b"\xff\xfe\x00bad")
    with pytest.raises(UnreadableDocument, match="not a text"):
        read(Path("x.docx"), b"")
