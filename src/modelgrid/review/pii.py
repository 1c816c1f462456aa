"""Personal-information detectors and masking.

Detectors run on the original text (digits and '@' are what they need, and the
normaliser would drop the separators they tolerate); only a pre-filter, whether a number can
be there at all, reads the folded text. Numbers are read in ASCII and full-width digits.
Masking choices, in line with common practice in China: mobile numbers keep the first 3 and
last 4 digits (138****5678); ID and bank card numbers keep only the last 4 digits; e-mail
addresses keep the first and last characters of the local part and the whole domain
(a***e@example.com). Separators inside numbers are kept so the text's layout survives.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from .normalise import fold

PiiKind = Literal["phone", "id_number", "bank_card", "email"]


@dataclass(frozen=True, slots=True)
class PiiSpan:
    kind: PiiKind
    start: int
    end: int


# Numbers in ASCII digits; full-width ones (１３８…) are read as ASCII first, in place.
_PHONE = re.compile(r"(?<![0-9])(?:\+?86[ -]?)?1[3-9](?:[ -]?[0-9]){9}(?![0-9])")
_ID = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
_CARD = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])")
# Where a number might be, found at C speed, since a pattern scans prose at a few tens of
# MB/s: the shortest kind, a mobile number, leaves 11 digits in a row once the separators it
# may hold are gone. In UTF-8 bytes every digit becomes "d" and all else "x". First on the
# folded text (every separator gone, full-width digits made ASCII: a loose test the caller
# often has for free), then on the text with only spaces and dashes gone.
_DIGIT_MARKS = bytes(0x64 if 0x30 <= c <= 0x39 else 0x78 for c in range(256))
_NUMBER_SEPARATORS = b" -"
_SHORTEST = b"d" * 11

# An address is found from its '@': the local part reaches back over these characters, the
# domain is matched forward. (A pattern tried at every word ran at a few MB/s.)
LOCAL_PART = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_DOMAIN = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")

# A full-width digit (U+FF10–FF19) in UTF-8: one pattern search (0.2 µs for a stream's
# piece, where testing for each digit in turn took 2.8).
_FULL_WIDTH_DIGIT = re.compile(b"\xef\xbc[\x90-\x99]")
_SHORT = 256  # characters: up to this, the folded text's looser test is not worth its cost
_HALF_WIDTH = {0xFF10 + d: 0x30 + d for d in range(10)} | {0xFF0B: 0x2B, 0xFF0D: 0x2D}

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of a resident identity number."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def valid_id_number(value: str) -> bool:
    if len(value) != 18 or not value[:17].isdigit() or value[0] in "09":
        return False
    try:
        born = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if not dt.date(1900, 1, 1) <= born <= dt.date.today():
        return False
    return id_check_digit(value[:17]) == value[17].upper()


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


def find_pii(text: str, folded: str | None = None) -> list[PiiSpan]:
    """All PII spans, non-overlapping; stricter detectors claim text first. ``folded`` is
    ``fold(text)``, for a caller that has it already."""
    spans = [PiiSpan("email", start, end) for start, end in _emails(text)] if "@" in text else []
    if len(text) > _SHORT:  # a stream's pieces go straight to the tighter test below
        folded = fold(text) if folded is None else folded
        if _SHORTEST not in folded.encode("utf-8", "surrogatepass").translate(_DIGIT_MARKS):
            return spans
    raw = text.encode("utf-8", "surrogatepass")
    # Looked for, not assumed from non-ASCII text: Chinese prose has full-width punctuation
    # (so the lead bytes) everywhere, and converting it all cost 10 µs a kilobyte.
    if len(raw) != len(text) and _FULL_WIDTH_DIGIT.search(raw) is not None:
        # One character for one, so spans found in it are spans of the text.
        text = text.translate(_HALF_WIDTH)
        raw = text.encode("utf-8", "surrogatepass")
    if _SHORTEST not in raw.translate(_DIGIT_MARKS, _NUMBER_SEPARATORS):
        return spans
    return _numbers(text, spans)


def _numbers(numbers: str, spans: list[PiiSpan]) -> list[PiiSpan]:
    """``spans`` with the numbers in ``numbers`` (ASCII digits) added, in order."""

    def free(start: int, end: int) -> bool:
        return all(end <= s.start or start >= s.end for s in spans)

    for m in _ID.finditer(numbers):
        if valid_id_number(m.group()) and free(m.start(), m.end()):
            spans.append(PiiSpan("id_number", m.start(), m.end()))
    # A +86 mobile number has 13 digits and may pass Luhn by chance: phones go first.
    for m in _PHONE.finditer(numbers):
        if free(m.start(), m.end()):
            spans.append(PiiSpan("phone", m.start(), m.end()))
    for m in _CARD.finditer(numbers):
        if luhn_valid(_digits(m.group())) and free(m.start(), m.end()):
            spans.append(PiiSpan("bank_card", m.start(), m.end()))
    return sorted(spans, key=lambda s: s.start)


def _emails(text: str) -> list[tuple[int, int]]:
    """Spans of e-mail addresses, as a pattern of local part, '@' and domain would find them
    left to right (the local part holds no '@', so each address has its own)."""
    found: list[tuple[int, int]] = []
    end = 0
    at = text.find("@")
    while at != -1:
        start = at
        while start > end and text[start - 1] in LOCAL_PART:
            start -= 1
        domain = _DOMAIN.match(text, at + 1) if start < at else None
        if domain is None:
            at = text.find("@", at + 1)
            continue
        end = domain.end()
        found.append((start, end))
        at = text.find("@", end)
    return found


def _mask_digits(value: str, keep_head: int, keep_tail: int) -> str:
    total = sum(c.isdigit() or c in "Xx" for c in value)
    out: list[str] = []
    seen = 0
    for c in value:
        if c.isdigit() or c in "Xx":
            seen += 1
            out.append(c if seen <= keep_head or seen > total - keep_tail else "*")
        else:
            out.append(c)
    return "".join(out)


def _mask_one(kind: PiiKind, value: str) -> str:
    if kind == "email":
        local, _, domain = value.partition("@")
        hidden = local if len(local) <= 2 else local[0] + "*" * (len(local) - 2) + local[-1]
        return f"{hidden}@{domain}"
    if kind == "phone":
        # A +86 prefix counts as head digits; keep it plus the operator prefix visible.
        head = len(_digits(value)) - 8
        return _mask_digits(value, head, 4)
    return _mask_digits(value, 0, 4)


def mask(text: str, spans: list[PiiSpan]) -> str:
    """Replace each span of the original text by its masked form."""
    out: list[str] = []
    pos = 0
    for s in sorted(spans, key=lambda s: s.start):
        if s.start < pos:
            continue  # overlapping span: the earlier one already covers it
        out.append(text[pos : s.start])
        out.append(_mask_one(s.kind, text[s.start : s.end]))
        pos = s.end
    out.append(text[pos:])
    return "".join(out)
