"""Aho-Corasick matcher over the operator's term list, tagged with TC260-003 risk codes.

The automaton is ahocorasick-rs (Rust's aho-corasick crate): with a 10,000-term list of
Chinese and English it scans Chinese text at about 25 million characters a second, where
pyahocorasick, whose trie searches a node's children in turn, managed 0.7 million (its root
has thousands of children once the list holds Chinese terms); see docs/benchmarks.md.

Terms and text go through the same normaliser, so evasions (inserted separators,
full-width letters, mixed case, traditional characters, homoglyphs) collapse onto the
listed form. Terms that start or end with an ASCII letter or digit must sit on word
boundaries (judged on the original neighbours, normalised), so "ass" does not match
"class"; CJK terms match as substrings, since Chinese has no spaces between words.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import ahocorasick_rs

from modelgrid.review.normalise import (
    DROPPED,
    SEVERAL,
    fold,
    fold_each,
    normalise,
    normalise_char,
    normalise_term,
    prepare,
)
from modelgrid.review.taxonomy import is_risk_code

Progress = Callable[[int, int], None]
# Operators' lists often have no risk column; A.1.8 is the standard's catch-all.
DEFAULT_RISK = "A.1.8"
_PROGRESS_EVERY = 1000
WINDOW = 4  # characters of the runs a stream's carry-over is checked against (StreamScanner)


@dataclass(frozen=True, slots=True)
class Term:
    text: str
    risk: str


@dataclass(frozen=True, slots=True)
class Hit:
    term: str
    risk: str
    start: int  # span in the original text (absolute stream offset for StreamScanner)
    end: int
    matched: str


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _parse_risk(raw: str, where: str) -> str:
    risk = raw.strip()
    if not is_risk_code(risk):
        raise ValueError(f"{where}: unknown risk code {risk!r}")
    return risk


def load_terms(path: str | Path, default_risk: str = DEFAULT_RISK) -> list[Term]:
    """Plain text (term[<TAB>risk], '#' comments) or CSV with a 'term,risk' header."""
    p = Path(path)
    terms: list[Term] = []
    with p.open(encoding="utf-8-sig", newline="") as f:
        if p.suffix.lower() == ".csv":
            for n, row in enumerate(csv.DictReader(f), start=2):
                text = (row.get("term") or "").strip()
                if text and not text.startswith("#"):
                    risk = row.get("risk") or default_risk
                    terms.append(Term(text, _parse_risk(risk, f"{p}:{n}")))
            return terms
        for n, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            text, _, risk = line.partition("\t")
            if text.strip():
                terms.append(Term(text.strip(), _parse_risk(risk or default_risk, f"{p}:{n}")))
    return terms


class TermMatcher:
    def __init__(self, terms: Iterable[Term], progress: Progress | None = None) -> None:
        term_list = list(terms)
        by_key: dict[str, list[Term]] = {}
        for i, term in enumerate(term_list, start=1):
            key = normalise_term(term.text)
            if key:
                by_key.setdefault(key, []).append(term)
            if progress is not None and (i % _PROGRESS_EVERY == 0 or i == len(term_list)):
                progress(i, len(term_list))
        self._keys = list(by_key)
        self._tagged = [tuple(by_key[key]) for key in self._keys]
        self.automaton = ahocorasick_rs.AhoCorasick(self._keys) if self._keys else None
        prepare()  # here, where loading already takes its time
        self.size = len(by_key)
        # Longest normalised term: the most text a stream may carry over between chunks.
        self.max_len = max((len(k) for k in by_key), default=0)
        # Every term's every prefix: a stream carries over only the longest folded tail that
        # could still grow into a term, usually a few characters rather than max_len. Every
        # run of up to WINDOW characters in a term: where a tail's first WINDOW characters
        # are none, neither it nor any longer tail begins a term, so the search stops there.
        self.prefixes = frozenset(k[:n] for k in by_key for n in range(1, len(k) + 1))
        self.windows = frozenset(
            k[i:j] for k in by_key for i in range(len(k)) for j in range(i + 1, i + WINDOW + 1)
        )

    @classmethod
    def from_file(cls, path: str | Path, progress: Progress | None = None) -> TermMatcher:
        return cls(load_terms(path), progress)

    def find(self, text: str, folded: str | None = None) -> list[Hit]:
        """``folded`` is ``fold(text)``, for a caller that has it already."""
        if not self.matches(fold(text) if folded is None else folded):
            return []  # most text: no position map, no word boundaries to judge
        return self._scan(text, prev="", final=True)[0]

    def matches(self, folded: str) -> bool:
        """Whether any term occurs in a folded text, boundaries not yet judged: at C speed."""
        return self.automaton is not None and bool(self.automaton.find_matches_as_indexes(folded))

    def _scan(self, text: str, prev: str, final: bool) -> tuple[list[Hit], bool]:
        """Hits in text; the flag says a hit at the very end awaits its right boundary.

        prev is the original character before text (for the left word boundary). Callers
        first ask ``matches``: this maps positions back to the text, which costs more.
        """
        hits: list[Hit] = []
        deferred = False
        if self.automaton is None:
            return hits, deferred
        norm = normalise(text)
        found = self.automaton.find_matches_as_indexes(norm.text, overlapping=True)
        for index, first, last in found:
            start, end = norm.span(first, last)
            tagged = self._tagged[index]
            key = self._keys[index]
            if _is_word_char(key[0]):
                before = normalise_char(text[start - 1]) if start > 0 else normalise_char(prev)
                if before and _is_word_char(before[-1]):
                    continue
            if _is_word_char(key[-1]):
                if end >= len(text) and not final:
                    deferred = True
                    continue
                after = normalise_char(text[end]) if end < len(text) else ""
                if after and _is_word_char(after[0]):
                    continue
            hits.extend(Hit(t.text, t.risk, start, end, text[start:end]) for t in tagged)
        return hits, deferred


class StreamScanner:
    """Scans streamed chunks; catches terms split across chunks and reports each hit once.

    Between chunks it keeps a carry-over: the shortest tail of the stream whose fold holds
    the longest folded tail that is a prefix of some term, where any hit still to come that
    reaches back into old text starts (a hit awaiting its right boundary ends the fold, so it
    is such a prefix too). Beside it is kept what each of its characters folds into
    (``fold_each``), so a chunk costs one table look-up a character, one automaton pass over
    carry and chunk, at most ``max_len`` set look-ups and one pattern match to find the next
    carry-over; only when the pass finds something are positions mapped back and boundaries
    judged. Text before the carry-over is settled: a stream shows it.
    """

    def __init__(self, matcher: TermMatcher) -> None:
        self._matcher = matcher
        self._buf = ""  # carry-over plus the newest chunk, original text
        self._each = ""  # fold_each(_buf)
        self._base = 0  # stream offset of _buf[0]
        self._prev = ""  # original character just before _buf
        self._seen: set[tuple[int, int, str]] = set()
        # _carries[n] matches the reversed fold_each over a carry of n folded characters: n
        # characters that fold into something, with what folds into nothing between them
        # (separators before the carry's first letter belong to no hit, so it starts on a
        # letter). Unrolled and possessive, it runs in 0.4 µs where
        # ``(?:\x00*[^\x00]){27}`` took 1.1. Compiled as first needed.
        self._carries: dict[int, re.Pattern[str]] = {}

    def feed(self, chunk: str) -> list[Hit]:
        # Called once a judgement, so written out in one piece (docs/benchmarks.md).
        buf = self._buf = self._buf + chunk
        each = self._each = self._each + fold_each(chunk)
        folded = _folded(buf, each)
        automaton = self._matcher.automaton
        found = automaton is not None and automaton.find_matches_as_indexes(folded)
        hits = self._report(final=False) if found else []
        # The longest folded tail that some term begins with, walked back from the end; a
        # tail may begin a term where a shorter one begins none, so the walk goes on until a
        # window at the tail's start occurs in no term (0.8 µs, where trying every tail up to
        # max_len took 3).
        matcher, size, keep = self._matcher, len(folded), 0
        prefixes, windows = matcher.prefixes, matcher.windows
        for length in range(1, min(size, matcher.max_len) + 1):
            start = size - length
            if folded[start : start + WINDOW] not in windows:
                break
            if folded[start:] in prefixes:
                keep = length
        # A character that folds into several counts as one here: the carry may be longer
        # than it must, never shorter.
        pattern = self._carries.get(keep)
        if pattern is None:
            pattern = self._carries[keep] = re.compile(f"{DROPPED}*+[^{DROPPED}]" * keep)
        carry = pattern.match(each[::-1])
        if carry is None:  # all of it folds into fewer than keep characters
            return hits
        cut = len(buf) - carry.end()
        if cut > 0:
            self._prev = buf[cut - 1]
            self._buf = buf[cut:]
            self._each = each[cut:]
            self._base += cut
            if self._seen:  # hits found again can only start inside the carry
                self._seen = {k for k in self._seen if k[0] >= self._base}
        return hits

    @property
    def settled(self) -> int:
        """Stream offset before which no hit can still be found: text up to it may be shown."""
        return self._base

    def finish(self) -> list[Hit]:
        """Call at end of stream: settles hits that waited for a right word boundary."""
        hits = (
            self._report(final=True)
            if self._matcher.matches(_folded(self._buf, self._each))
            else []
        )
        self._buf = self._each = ""
        return hits

    def _report(self, final: bool) -> list[Hit]:
        local, _ = self._matcher._scan(self._buf, self._prev, final)
        fresh: list[Hit] = []
        for h in local:
            hit = Hit(h.term, h.risk, h.start + self._base, h.end + self._base, h.matched)
            key = (hit.start, hit.end, hit.term)
            if key not in self._seen:
                self._seen.add(key)
                fresh.append(hit)
        return fresh


def _folded(text: str, each: str) -> str:
    """``fold(text)``, given ``fold_each(text)``: read off it unless a character folds into
    several."""
    return fold(text) if SEVERAL in each else each.replace(DROPPED, "")
