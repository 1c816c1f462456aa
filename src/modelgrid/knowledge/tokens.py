"""Text to index terms, for English and Chinese alike (pure).

Latin words are lower-cased (after NFKC, so full-width letters read as ASCII); Chinese, Japanese
and Korean runs, which have no spaces to split on, become overlapping character bigrams, as
Lucene's CJK analyser makes them: no dictionary to ship, and a two-character word matches
wherever it occurs."""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(
    r"[0-9a-z]+(?:['’][a-z]+)?|[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7af]+"
)
_CJK_START = "\u3040"
# Words too common to tell passages apart; left out of the index and of queries.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "our",
        "so",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
        "do",
        "does",
        "did",
        "can",
        "could",
        "should",
        "would",
        "may",
    ]
)
MAX_TERM = 64  # longer "words" (hashes, base64) are not worth indexing whole


def terms(text: str) -> list[str]:
    """The index terms of ``text``, in order, repeats kept (term frequency counts them)."""
    found: list[str] = []
    for match in _WORD.finditer(unicodedata.normalize("NFKC", text).lower()):
        word = match.group()
        if word[0] < _CJK_START:
            if word not in STOPWORDS:
                found.append(_singular(word[:MAX_TERM]))
        elif len(word) == 1:
            found.append(word)
        else:
            found.extend(word[i : i + 2] for i in range(len(word) - 1))
    return found


def length(text: str) -> int:
    """How long ``text`` is in the units chunks are measured in: words, and CJK characters."""
    return sum(
        1 if m.group()[0] < _CJK_START else len(m.group())
        for m in _WORD.finditer(unicodedata.normalize("NFKC", text).lower())
    )


def _singular(word: str) -> str:
    """Harman's S-stemmer: plurals read as their singular ("refunds", "policies"), and nothing
    else changed, so that no dictionary is needed and no two unrelated words merge."""
    if len(word) > 3 and word.endswith("ies") and word[-4] not in "ae":
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("es") and word[-3] not in "aeo":
        return word[:-1]
    if len(word) > 2 and word.endswith("s") and word[-2] not in "us":
        return word[:-1]
    return word
