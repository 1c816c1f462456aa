"""Reviewing text against a policy: whole (a prompt, an answer) or as it streams (pure).

A streamed answer is held back just enough that nothing reaches the client before it has been
judged: the term scanner's carry-over (any hit still to come starts inside it), and a trailing
run of digits or a trailing word, which may still grow into a phone, card or ID number or an
e-mail address. Everything before both is released, masked where the policy masks. A refusal
stops the stream there: what was released stays released, nothing after it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .normalise import fold
from .pii import LOCAL_PART, PiiSpan, find_pii, mask
from .terms import Hit, StreamScanner, TermMatcher
from .verdict import Action, Policy, Reason, Verdict, decide

# What may still become personal information once more text arrives.
_TRAILING_NUMBER = re.compile(r"\+?\d[\d \-]*$")
_TRAILING_WORD = re.compile(r"[A-Za-z0-9._%+\-@]+$")
_WORD_CHARACTERS = LOCAL_PART | {"@"}  # what _TRAILING_WORD is made of

# Characters judged at once in a stream (about eight tokens, a sixth of a second at 50 tokens
# a second): what a client waits for at most beyond the carry-over, in return for a fraction
# of the scans. Each judgement costs about the same whatever its length (docs/benchmarks.md).
SCAN_EVERY = 32

ALLOWED = Verdict(Action.ALLOW, (), False, ())


@dataclass(frozen=True, slots=True)
class Screened:
    text: str  # the text as it may be used: masked where the policy masks
    verdict: Verdict


def screen(matcher: TermMatcher, text: str, policy: Policy) -> Screened:
    """A whole text's verdict, and the text with what the policy masks masked."""
    folded = fold(text)  # once, for the terms and the numbers' pre-filter
    verdict = decide(matcher.find(text, folded), find_pii(text, folded), policy)
    if verdict.action is Action.MASK and verdict.mask_spans:
        return Screened(mask(text, list(verdict.mask_spans)), verdict)
    return Screened(text, verdict)


def combined(verdicts: list[Verdict]) -> Verdict:
    """Several verdicts (the messages of a prompt, the pieces of a stream) as one."""
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
    refused: Verdict | None = None
    _scanner: StreamScanner = field(init=False)
    _pending: str = ""  # received, not yet released
    _unscanned: int = 0  # how many characters at its end are not yet scanned for terms
    _released: int = 0  # stream offset of _pending[0]
    _last: str = ""  # the last character released, for detectors' left boundaries
    _verdicts: list[Verdict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._scanner = StreamScanner(self.matcher)

    @property
    def verdict(self) -> Verdict:
        return combined(self._verdicts)

    def feed(self, text: str) -> str:
        if self.refused is not None or not text:
            return ""
        self._pending += text
        self._unscanned += len(text)
        # Judged a batch at a time: a scan costs the carry-over's length whatever the piece's,
        # and pieces are a token (about 4 characters) each. Nothing unjudged is released.
        if self._unscanned < SCAN_EVERY:
            return ""
        batch, self._unscanned = self._pending[-self._unscanned :], 0
        if self._judge(self._scanner.feed(batch)):
            return ""
        until = min(self._scanner.settled - self._released, len(self._pending))
        return self._release(self._released + _unsplit(self._pending, until))

    def finish(self) -> str:
        if self.refused is not None:
            return ""
        batch = self._pending[len(self._pending) - self._unscanned :]
        self._unscanned = 0
        if self._judge(self._scanner.feed(batch) + self._scanner.finish()):
            return ""
        return self._release(self._released + len(self._pending))

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

    def _release(self, until: int) -> str:
        n = until - self._released
        if n <= 0:
            return ""
        segment, self._pending = self._pending[:n], self._pending[n:]
        self._released = until
        # One character of what went before, so that a detector's left boundary sees it.
        context = self._last
        self._last = segment[-1]
        spans = [s for s in find_pii(context + segment) if s.start >= len(context)]
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
    # The patterns only where they can match: the text before the cut must end as they do.
    if (last.isdigit() or last in " -") and (not following or following in "0123456789 -"):
        cut = min(cut, _start_of(_TRAILING_NUMBER, text[:until]))
    if last in _WORD_CHARACTERS and (not following or not following.isspace()):
        cut = min(cut, _start_of(_TRAILING_WORD, text[:until]))
    return cut


def _start_of(pattern: re.Pattern[str], text: str) -> int:
    found = pattern.search(text)
    return len(text) if found is None else found.start()


def reasons_json(verdict: Verdict) -> list[dict[str, str]]:
    return [_reason(r) for r in verdict.reasons]


def _reason(reason: Reason) -> dict[str, str]:
    return {"action": reason.action.name.lower(), "source": reason.source, "detail": reason.detail}
