"""Normaliser shared by term lists and the text under review.

Steps per original character: Unicode NFKC (full-width to half-width, ligatures and
circled digits to plain ones), case folding, traditional to simplified Chinese, common
Cyrillic/Greek homoglyphs to Latin, and dropping separators (spaces, punctuation,
symbols, control/format characters such as zero-width joiners, combining marks). Letters
and digits are never dropped, so text with a term's letters far apart cannot become a
match; only what evaders insert between characters disappears.

Every normalised character keeps the index of the original character it came from, so
hits can be mapped back to spans of the original text and masked there.

Traditional to simplified uses ``hanziconv``: it converts character by character, so the
output has the same length as the input and our position map stays exact. In a quick
check on 10,000 characters it took about 4 ms, against about 11 ms plus 0.1 s start-up
for ``opencc-purepy``, whose phrase-level rules may also change lengths. Per-character
conversion loses OpenCC's phrase disambiguation, which matters for display, not for
matching keywords that are normalised the same way.

Digit look-alikes (0 for o, 1 for l) are deliberately not folded: it would corrupt the
numbers the PII detectors and ordinary text rely on.
"""

from __future__ import annotations

import codecs
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from hanziconv import HanziConv

# Lower-case only: case folding runs first, so upper-case look-alikes arrive here folded.
HOMOGLYPHS: dict[str, str] = {
    # Cyrillic
    "а": "a",
    "в": "b",
    "с": "c",
    "ԁ": "d",
    "е": "e",
    "ё": "e",
    "һ": "h",
    "і": "i",
    "ї": "i",
    "ј": "j",
    "к": "k",
    "ӏ": "l",
    "м": "m",
    "н": "h",
    "о": "o",
    "р": "p",
    "ԛ": "q",
    "ѕ": "s",
    "т": "t",
    "ѵ": "v",
    "ԝ": "w",
    "х": "x",
    "у": "y",
    # Greek
    "α": "a",
    "β": "b",
    "ε": "e",
    "η": "n",
    "ι": "i",
    "κ": "k",
    "ν": "v",
    "ο": "o",
    "ρ": "p",
    "τ": "t",
    "υ": "u",
    "χ": "x",
    "ω": "w",
}

# Unicode general-category prefixes treated as separators: space (Z), control and format
# (C, includes zero-width characters), punctuation (P), symbols (S), marks (M, which
# evaders stack on letters).
_SEPARATOR_CATEGORIES = ("Z", "C", "P", "S", "M")


@dataclass(frozen=True, slots=True)
class Normalised:
    text: str
    # origin[i] is the index in the original text of the character text[i] came from.
    origin: tuple[int, ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original-text span of the normalised slice [start, end)."""
        return self.origin[start], self.origin[end - 1] + 1


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


@lru_cache(maxsize=65536)
def normalise_char(ch: str) -> str:
    """What one original character becomes; empty for separators."""
    out: list[str] = []
    for c in unicodedata.normalize("NFKC", ch).casefold():
        if unicodedata.category(c).startswith(_SEPARATOR_CATEGORIES):
            continue
        if _is_cjk(c):
            simplified = HanziConv.toSimplified(c)
            c = simplified if len(simplified) == 1 else c
        out.append(HOMOGLYPHS.get(c, c))
    return "".join(out)


def normalise(text: str) -> Normalised:
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        for c in normalise_char(ch):
            chars.append(c)
            origin.append(i)
    return Normalised("".join(chars), tuple(origin))


def normalise_term(term: str) -> str:
    return normalise(term).text


def fold(text: str) -> str:
    """``normalise(text).text`` without the position map, at C speed: the normaliser maps each
    character on its own, so folding is a table look-up per character. Review folds every
    text this way and pays for the map only when a term is found.

    ASCII always goes through one ``bytes.translate`` (lower case, separators deleted). For the
    rest, by what the text holds, each way measured (docs/benchmarks.md): a long text with
    many characters beyond ASCII (Chinese) through numpy, its UTF-16 code units indexing a
    code point table; anything else (mostly-ASCII prose, a stream's short pieces) has its
    ASCII done on the bytes and each run of other characters looked up in the table, by an
    ASCII encoder whose error handler is the look-up (one call a run, no pattern scanning)."""
    if text.isascii():
        return text.encode().translate(_ASCII_CASE, _ASCII_SEPARATORS).decode()
    if len(text) < _DIRECT_UNDER and _in_plane(text):  # a stream's pieces: one look-up each
        return text.translate(_tables().bmp)
    raw = text.encode("utf-8", "surrogatepass")
    if len(text) >= _NUMPY_FROM and len(raw) - len(text) >= _NUMPY_EXTRA_BYTES:
        folded = _fold_numpy(text)
        if folded is not None:
            return folded
    rest = raw.translate(_ASCII_CASE, _ASCII_SEPARATORS).decode("utf-8", "surrogatepass")
    return rest.encode("ascii", _FOLD_ERRORS).decode("utf-8", "surrogatepass")


def _fold_numpy(text: str) -> str | None:
    """The fold of a text of the Basic Multilingual Plane, None for one it cannot do (a
    character beyond the plane, or one that folds into several or into one beyond it)."""
    units = text.encode("utf-16-le", "surrogatepass")
    if len(units) != 2 * len(text):
        return None
    out = _tables().single.take(np.frombuffer(units, dtype=np.uint16))
    folded = out[out != 0].tobytes().decode("utf-16-le", "surrogatepass")
    return None if SEVERAL in folded else folded


# ASCII folds onto itself: upper case to lower, everything but letters and digits dropped
# (all of it is space, control, punctuation or symbol). Bytes from 0x80 up, the rest of a
# UTF-8 sequence, pass unchanged.
_ASCII_CASE = bytes(c + 32 if 0x41 <= c <= 0x5A else c for c in range(256))
_ASCII_SEPARATORS = bytes(c for c in range(128) if not chr(c).isalnum())
# fold_each's: the same, with what is dropped kept as NUL.
_ASCII_EACH = bytes(
    c + 32 if 0x41 <= c <= 0x5A else c if chr(c).isalnum() else 0 for c in range(128)
)
_ASCII_EACH += bytes(range(128, 256))
# Up to this many characters, a text beyond ASCII folds fastest by one look-up a character:
# no encoding to UTF-8 and back, no error handler called (a 32-character piece of Chinese,
# 4.1 to 1.7 µs).
_DIRECT_UNDER = 128
DROPPED = "\0"  # NUL folds into nothing itself, so it never stands for a folded character
# numpy's fixed cost (a few µs) pays off only for long texts with many characters to look up
# (UTF-8 bytes beyond one a character: Chinese has two extra each); measured at 1 KB.
_NUMPY_FROM = 256  # characters
_NUMPY_EXTRA_BYTES = 64
# In the 16-bit table: what marks a code point the numpy path cannot fold (a lone surrogate,
# never the fold of anything).
_SEVERAL = 0xD800
SEVERAL = chr(_SEVERAL)  # also fold_each's mark for a character that folds into several
_FOLD_ERRORS = "modelgrid-fold"


def _fold_error(error: UnicodeError) -> tuple[bytes, int]:
    """Error handler of the ASCII encoder in ``fold``: a run of other characters, folded, in
    UTF-8 (the encoder copies bytes through as they are)."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    run = error.object[error.start : error.end]
    if max(run) <= "\uffff":  # in the plane: one look-up a character
        folded = run.translate(_tables().bmp)
    else:
        folded = "".join(normalise_char(c) for c in run)
    return folded.encode("utf-8", "surrogatepass"), error.end


codecs.register_error(_FOLD_ERRORS, _fold_error)


def prepare() -> None:
    """Builds the folding tables (about a tenth of a second): the review's loader calls it off
    the event loop, so that no request pays for it."""
    _tables()


def fold_each(text: str) -> str:
    """What each character of ``text`` folds into, one character for one: DROPPED for one that
    folds into nothing, SEVERAL for one that folds into more than one. A stream's scanner
    keeps it beside the text it carries over: without DROPPED it is the fold (when SEVERAL is
    not in it), and where the carry-over starts is read off it. One look-up a character."""
    if text.isascii():
        return text.encode().translate(_ASCII_EACH).decode()
    if _in_plane(text):
        return text.translate(_tables().each)
    return "".join(_one_for_one(normalise_char(c)) for c in text)


def _in_plane(text: str) -> bool:
    """Whether every character lies in the Basic Multilingual Plane, what the tables cover."""
    return len(text.encode("utf-16-le", "surrogatepass")) == 2 * len(text)


def _one_for_one(folded: str) -> str:
    return folded if len(folded) == 1 else SEVERAL if folded else DROPPED


@dataclass(frozen=True, slots=True)
class _Tables:
    bmp: list[str | None]  # what each code point of the plane becomes (None: dropped)
    each: list[str]  # the same one for one: fold_each's table
    # The one code point each becomes: 0 when dropped, _SEVERAL when it becomes several
    # (ligatures, ß), one beyond the plane, or is a lone surrogate.
    single: npt.NDArray[np.uint16]


@lru_cache(maxsize=1)
def _tables() -> _Tables:
    """Built once, in about a tenth of a second; the review's loader warms it off the loop."""
    bmp: list[str | None] = []
    each: list[str] = []
    single = np.zeros(0x10000, dtype=np.uint16)
    for point in range(0x10000):
        if 0xD800 <= point <= 0xDFFF:  # surrogates never stand alone in a str
            bmp.append(None)
            each.append(DROPPED)
            single[point] = _SEVERAL  # and so never take the numpy path
            continue
        folded = normalise_char(chr(point)) or None
        bmp.append(folded)
        each.append(_one_for_one(folded or ""))
        if folded is not None and len(folded) == 1 and ord(folded) < 0x10000:
            single[point] = ord(folded)
        elif folded is not None:
            single[point] = _SEVERAL
    return _Tables(bmp, each, single)
