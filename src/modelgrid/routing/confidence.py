"""How sure a small model's answer is, from what generating it gave (pure): the mean
probability of its tokens, or how many of several samples agree.

FrugalGPT and the cascade literature score an answer with a learned verifier (routing/
router.py, ``--inputs answer``); these two need no training data: the answer's own token
log-probabilities, and self-consistency (Wang et al., 2023), where answers that agree across
samples are more often right. Both read an answer's key: its final number where it has one
(arithmetic, GSM8K), otherwise its words, folded.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_WORDS = re.compile(r"\w+")


def token_confidence(logprobs: Sequence[float]) -> float:
    """The geometric mean of the tokens' probabilities, 0..1 (0 when there are none)."""
    if not logprobs:
        return 0.0
    return math.exp(sum(logprobs) / len(logprobs))


def answer_key(text: str) -> str:
    """What two answers must share to agree: the last number in it (commas dropped, a
    trailing ``.0`` too), or else its words in lower case."""
    numbers = _NUMBER.findall(text)
    if numbers:
        number = str(numbers[-1]).replace(",", "")
        return number[:-2] if number.endswith(".0") else number
    return " ".join(_WORDS.findall(text.lower()))


def agreement(keys: Sequence[str]) -> tuple[str, int]:
    """The most common key and how many share it (the first such key on a tie)."""
    if not keys:
        return "", 0
    counts = Counter(keys)
    best = max(counts.values())
    return next(k for k in keys if counts[k] == best), best


def samples_needed(samples: int, min_agreement: float) -> int:
    """How many of ``samples`` must agree to keep the small model's answer."""
    return max(1, math.ceil(min_agreement * samples - 1e-9))


def settled(keys: Sequence[str], samples: int, needed: int) -> bool | None:
    """Early stopping: True once ``needed`` samples agree, False once the samples left
    cannot bring any key there, None while it is still open."""
    _, most = agreement(keys)
    if most >= needed:
        return True
    if most + (samples - len(keys)) < needed:
        return False
    return None


def same_answer(answer: str, reference: str) -> bool:
    """Whether ``answer`` gives ``reference``'s answer: by key, or the reference's words
    found in it (a reference answer is usually the short form)."""
    key, wanted = answer_key(answer), answer_key(reference)
    if not wanted:
        return False
    if key == wanted:
        return True
    return not _NUMBER.search(reference) and f" {wanted} " in f" {key} "


JUDGE_PROMPT = (
    "Question:\n{question}\n\nAnswer:\n{answer}\n\n"
    "Is this answer correct and complete? Reply with one word: yes or no."
)


def judged(reply: str) -> bool | None:
    """A judge model's verdict: its reply's first word, yes or no (None for anything else)."""
    words = _WORDS.findall(reply.lower())
    if not words or words[0] not in ("yes", "no"):
        return None
    return bool(words[0] == "yes")


def sampled(uid: str, share: float) -> bool:
    """Whether a request (by its random hexadecimal id) falls in ``share`` of all: the same
    answer for the same id, on every replica."""
    return int(uid[:8], 16) < share * 0x1_0000_0000
