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
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import accumulate, islice
from pathlib import Path

import ahocorasick_rs

from modelgrid.review.normalise import (
    fold,
    folded_lengths,
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
        self._automaton = ahocorasick_rs.AhoCorasick(self._keys) if self._keys else None
        prepare()  # here, where loading already takes its time
        self.size = len(by_key)
        # Longest normalised term: how much text a stream must carry over between chunks.
        self.max_len = max((len(k) for k in by_key), default=0)

    @classmethod
    def from_file(cls, path: str | Path, progress: Progress | None = None) -> TermMatcher:
        return cls(load_terms(path), progress)

    def find(self, text: str, folded: str | None = None) -> list[Hit]:
        """``folded`` is ``fold(text)``, for a caller that has it already."""
        return self._scan(text, prev="", final=True, folded=folded)[0]

    def _scan(
        self, text: str, prev: str, final: bool, folded: str | None = None
    ) -> tuple[list[Hit], bool]:
        """Hits in text; the flag says a hit at the very end awaits its right boundary.

        prev is the original character before text (for the left word boundary).
        """
        hits: list[Hit] = []
        deferred = False
        if self._automaton is None:
            return hits, deferred
        # Most text holds no term: find that out at C speed, and map positions only if not.
        if not self._automaton.find_matches_as_indexes(fold(text) if folded is None else folded):
            return hits, deferred
        norm = normalise(text)
        found = self._automaton.find_matches_as_indexes(norm.text, overlapping=True)
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
    """Scans streamed chunks; catches terms split across chunks and reports each hit once."""

    def __init__(self, matcher: TermMatcher) -> None:
        self._matcher = matcher
        self._buf = ""  # carry-over plus the newest chunk, original text
        # _ends[i]: the folded length of the stream up to _buf[i], so that the carry-over's
        # start is a bisection, not a walk back through the text a character at a time.
        self._ends = [0]
        self._folded = ""  # fold(_buf), kept as chunks arrive: each is folded once
        self._base = 0  # stream offset of _buf[0]
        self._prev = ""  # original character just before _buf
        self._seen: set[tuple[int, int, str]] = set()

    def feed(self, chunk: str) -> list[Hit]:
        self._buf += chunk
        self._folded += fold(chunk)
        ends = accumulate(folded_lengths(chunk), initial=self._ends[-1])
        self._ends.extend(islice(ends, 1, None))
        return self._report(final=False)

    @property
    def settled(self) -> int:
        """Stream offset before which no hit can still be found: text up to it may be shown."""
        return self._base

    def finish(self) -> list[Hit]:
        """Call at end of stream: settles hits that waited for a right word boundary."""
        hits = self._report(final=True)
        self._buf = self._folded = ""
        self._ends = [self._ends[-1]]
        return hits

    def _report(self, final: bool) -> list[Hit]:
        local, _ = self._matcher._scan(self._buf, self._prev, final, self._folded)
        fresh: list[Hit] = []
        for h in local:
            hit = Hit(h.term, h.risk, h.start + self._base, h.end + self._base, h.matched)
            key = (hit.start, hit.end, hit.term)
            if key not in self._seen:
                self._seen.add(key)
                fresh.append(hit)
        self._trim()
        return fresh

    def _trim(self) -> None:
        # Keep the shortest tail that folds into max_len characters: any hit still to come
        # that reaches back into old text starts within it. Deferred hits are shorter, so
        # stay too.
        ends, size = self._ends, len(self._buf)
        cut = max(0, bisect_right(ends, ends[-1] - self._matcher.max_len) - 1)
        while cut < size and ends[cut + 1] == ends[cut]:
            cut += 1  # separators before the carry's first letter belong to no hit
        if cut > 0:
            self._prev = self._buf[cut - 1]
            self._buf = self._buf[cut:]
            self._folded = self._folded[ends[cut] - ends[0] :]
            del ends[:cut]
            self._base += cut
            if self._seen:  # hits found again can only start inside the carry
                self._seen = {k for k in self._seen if k[0] >= self._base}
