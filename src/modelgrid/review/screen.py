"""Reviewing text against a policy: whole (a prompt, an answer) or as it streams (pure).

A streamed answer is held back just enough that nothing reaches the client before it has been
judged: the term scanner's carry-over (any hit still to come starts inside it), and a trailing
run of digits or a trailing word, which may still grow into a phone, card or ID number or an
e-mail address. Everything before both is released, masked where the policy masks. A refusal
stops the stream there: what was released stays released, nothing after it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .normalise import fold
from .pii import LOCAL_PART, PiiSpan, find_pii, mask
from .terms import Hit, StreamScanner, TermMatcher
from .verdict import Action, Policy, Reason, Verdict, decide

# What may still become personal information once more text arrives: a trailing run of
# digits (ASCII and full-width, what the detectors read), spaces and dashes, or of the
# characters of an e-mail address.
_NUMBER_STRING = "0123456789" + "".join(chr(0xFF10 + d) for d in range(10)) + " -"
_WORD_CHARACTERS = LOCAL_PART | {"@"}
_WORD_STRING = "".join(sorted(_WORD_CHARACTERS))

# A stream is judged SCAN_WAIT seconds after its last judgement, or sooner once SCAN_EVERY
# characters are new. The clock is what governs: a model at 50 tokens a second moves about
# four tokens a twentieth of a second, and even one at 5,000 (some 20,000 characters a
# second) is judged on it; SCAN_EVERY only bounds what a faster source (a cached answer, a
# burst that arrived at once) holds back. A judgement's work grows with its text, but it
# also has a fixed cost (about 6 µs, and the matcher's release of the interpreter lock: some
# 20 µs more on a busy server, docs/benchmarks.md), so a fast stream is judged twenty times a
# second rather than every few tokens, and shows its text at the pace a slow one does. Until
# its first text is released every piece is judged: the time to first token is what a client
# notices most.
SCAN_EVERY = 1024
SCAN_WAIT = 0.05

ALLOWED = Verdict(Action.ALLOW, (), False, ())


@dataclass(frozen=True, slots=True)
class Screened:
    text: str  # the text as it may be used: masked where the policy masks
    verdict: Verdict


def screen(matcher: TermMatcher, text: str, policy: Policy) -> Screened:
    """A whole text's verdict, and the text with what the policy masks masked."""
    folded = fold(text)  # once, for the terms and the numbers' pre-filter
    hits, spans = matcher.find(text, folded), find_pii(text, folded)
    if not hits and not spans:  # most texts: the verdict decide would reach, without it
        return Screened(text, ALLOWED)
    verdict = decide(hits, spans, policy)
    if verdict.action is Action.MASK and verdict.mask_spans:
        return Screened(mask(text, list(verdict.mask_spans)), verdict)
    return Screened(text, verdict)


def combined(verdicts: list[Verdict]) -> Verdict:
    """Several verdicts (the messages of a prompt, the pieces of a stream) as one."""
    if all(v is ALLOWED for v in verdicts):  # almost every request: nothing to merge
        return ALLOWED
    reasons = tuple(r for v in verdicts for r in v.reasons)
    return Verdict(
        max((v.action for v in verdicts), default=Action.ALLOW),
        reasons,
        any(v.review for v in verdicts),
        tuple(s for v in verdicts for s in v.mask_spans),
    )


@dataclass(slots=True)
class OutputFilter:
    """Reviews one choice's answer as it streams: ``feed`` each piece of text and show what it
    returns; ``finish`` at the end returns the rest. Once ``refused`` is set, both return ''."""

    matcher: TermMatcher
    policy: Policy
    clock: Callable[[], float] = time.monotonic
    refused: Verdict | None = None
    _scanner: StreamScanner = field(init=False)
    _new: str = ""  # received, not yet judged
    _held: str = ""  # judged, not yet released (the carry-over, a number that may grow)
    _released: int = 0  # stream offset of _held[0]
    _last: str = ""  # the last character released, for detectors' left boundaries
    _judged: float = 0.0  # clock() at the last judgement
    _verdicts: list[Verdict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._scanner = StreamScanner(self.matcher)

    @property
    def verdict(self) -> Verdict:
        return combined(self._verdicts)

    def feed(self, text: str) -> str:
        # Called once a token: kept to an append, comparisons and a clock read
        # (docs/benchmarks.md).
        self._new += text
        if self.refused is not None or (
            len(self._new) < SCAN_EVERY
            and self._released
            and self.clock() - self._judged < SCAN_WAIT
        ):
            return ""
        return self._judge_new()

    def finish(self) -> str:
        if self.refused is not None:
            return ""
        batch, self._new = self._new, ""
        self._held += batch
        if self._judge(self._scanner.feed(batch) + self._scanner.finish()):
            return ""
        return self._release(len(self._held))

    def _judge_new(self) -> str:
        """Judges what arrived since the last judgement and releases what is then settled.
        Nothing unjudged is released."""
        batch, self._new = self._new, ""
        self._judged = self.clock()
        held = self._held = self._held + batch
        scanner = self._scanner
        hits = scanner.feed(batch)
        if hits and self._judge(hits):
            return ""
        return self._release(_unsplit(held, min(scanner.settled - self._released, len(held))))

    def _judge(self, hits: list[Hit]) -> bool:
        """Record the new term hits; True if they refuse the answer."""
        return bool(hits) and self._note(decide(hits, [], self.policy))

    def _note(self, verdict: Verdict) -> bool:
        if verdict.reasons:
            self._verdicts.append(verdict)
        if verdict.action is Action.REFUSE:
            self.refused = verdict
            return True
        return False

    def _release(self, n: int) -> str:
        """The first ``n`` characters held, masked where the policy masks."""
        if n <= 0:
            return ""
        segment, self._held = self._held[:n], self._held[n:]
        self._released += n
        # One character of what went before, so that a detector's left boundary sees it.
        context = self._last
        self._last = segment[-1]
        found = find_pii(context + segment)
        if not found:  # most segments: no list built, no verdict
            return segment
        spans = [s for s in found if s.start >= len(context)]
        if not spans:
            return segment
        shifted = [PiiSpan(s.kind, s.start - len(context), s.end - len(context)) for s in spans]
        verdict = decide([], shifted, self.policy)
        if self._note(verdict):
            return ""
        return mask(segment, list(verdict.mask_spans)) if verdict.mask_spans else segment


def _unsplit(text: str, until: int) -> int:
    """``until``, moved back so that it splits no number or word that might be, or become,
    personal information: what lies before it can be judged on its own."""
    if until <= 0:
        return 0
    cut, last = until, text[until - 1]
    following = text[until] if until < len(text) else ""
    # Only where they can match: the text before the cut must end as they do. Found by
    # stripping from the end (C speed), not by a pattern, which tries every position.
    if (last.isdigit() or last in " -") and (not following or following in "0123456789 -"):
        cut = min(cut, _trailing_number(text, until))
    if last in _WORD_CHARACTERS and (not following or not following.isspace()):
        cut = min(cut, len(text[:until].rstrip(_WORD_STRING)))
    return cut


def _trailing_number(text: str, until: int) -> int:
    """Where ``text[:until]`` ends in a run of digits, spaces and dashes that starts with a
    digit, optionally after '+' (what may still grow into a phone or card number); else
    ``until``."""
    head = text[:until]
    run_start = len(head.rstrip(_NUMBER_STRING))
    first = until - len(head[run_start:].lstrip(" -"))  # the run's first digit
    if first == until:  # spaces and dashes only
        return until
    return first - 1 if first > 0 and text[first - 1] == "+" else first


def reasons_json(verdict: Verdict) -> list[dict[str, str]]:
    return [_reason(r) for r in verdict.reasons]


def _reason(reason: Reason) -> dict[str, str]:
    return {"action": reason.action.name.lower(), "source": reason.source, "detail": reason.detail}
