"""Documents cut into passages that overlap, the unit that is indexed, retrieved and cited
(pure).

A passage never crosses a section (a heading, or a PDF's page), so its citation names one
place. Within a section, paragraphs are packed up to ``size`` (words, and CJK characters);
one too long is cut at sentence ends, and a sentence too long at words. Each passage after the
first of a section begins with the end of the one before (up to ``overlap``), so that a fact
split by a cut is whole in one of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .tokens import length

SIZE = 200
OVERLAP = 40

_PARAGRAPHS = re.compile(r"\n\s*\n")
_SENTENCES = re.compile(r"(?<=[.!?。！？；;])\s+|(?<=[。！？；])")
_WORDS = re.compile(r"\S+\s*")


@dataclass(frozen=True, slots=True)
class Section:
    heading: str  # the nearest heading, or "page N"; empty: none
    text: str
    page: int | None = None


@dataclass(frozen=True, slots=True)
class Passage:
    text: str
    heading: str
    page: int | None


def passages(sections: list[Section], size: int = SIZE, overlap: int = OVERLAP) -> list[Passage]:
    found: list[Passage] = []
    for section in sections:
        pieces = [p for para in _PARAGRAPHS.split(section.text) for p in _pieces(para, size)]
        chunk: list[tuple[str, int]] = []
        fresh = False  # whether the chunk holds more than the previous one's carried end
        for piece in pieces:
            n = length(piece)
            if chunk and fresh and sum(k for _, k in chunk) + n > size:
                found.append(_passage(chunk, section))
                chunk, fresh = _tail(chunk, overlap), False
            chunk.append((piece, n))
            fresh = True
        if fresh:
            found.append(_passage(chunk, section))
    return found


def _pieces(paragraph: str, size: int) -> list[str]:
    """A paragraph as parts no longer than ``size``: itself, its sentences, or word runs."""
    paragraph = " ".join(paragraph.split()) if not _is_cjk_heavy(paragraph) else paragraph.strip()
    if not paragraph:
        return []
    if length(paragraph) <= size:
        return [paragraph]
    out: list[str] = []
    for sentence in filter(None, (s.strip() for s in _SENTENCES.split(paragraph))):
        if length(sentence) <= size:
            out.append(sentence)
            continue
        run: list[str] = []
        for word in _WORDS.findall(sentence) if " " in sentence else list(sentence):
            if run and length("".join(run) + word) > size:
                out.append("".join(run).strip())
                run = []
            run.append(word)
        if run:
            out.append("".join(run).strip())
    return out


def _tail(chunk: list[tuple[str, int]], overlap: int) -> list[tuple[str, int]]:
    kept: list[tuple[str, int]] = []
    total = 0
    for piece, n in reversed(chunk):
        if total + n > overlap:
            break
        kept.insert(0, (piece, n))
        total += n
    return kept


def _passage(chunk: list[tuple[str, int]], section: Section) -> Passage:
    joiner = "" if _is_cjk_heavy(chunk[0][0]) else "\n\n"
    return Passage(joiner.join(p for p, _ in chunk), section.heading, section.page)


def _is_cjk_heavy(text: str) -> bool:
    sample = text[:200]
    return sum(1 for c in sample if "\u3400" <= c <= "\u9fff") * 3 > len(sample)
