"""Pure policy to verdict.

Severity order, most severe first: refuse > mask > flag > allow. Refusing withholds
everything, so it trumps all. Masking alters what the user sees, which is a stronger
intervention than flagging (content passes unchanged, a reviewer looks later), so mask
outranks flag. A flag is never lost, though: `review` stays true whenever any rule
flagged, so a masked answer that also tripped a flag rule still reaches the queue.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from modelgrid.review.pii import PiiKind, PiiSpan
from modelgrid.review.terms import Hit


class Action(enum.IntEnum):
    # Values encode severity so max() picks the winner.
    ALLOW = 0
    FLAG = 1
    MASK = 2
    REFUSE = 3


@dataclass(frozen=True, slots=True)
class Policy:
    # Keys are risk codes ("A.1.4") or class codes ("A.1"); a risk code beats its class.
    risks: Mapping[str, Action] = field(default_factory=dict)
    default_risk: Action = Action.REFUSE
    # Allowed values for PII: ALLOW, MASK, REFUSE (FLAG also accepted).
    pii: Mapping[PiiKind, Action] = field(default_factory=dict)
    default_pii: Action = Action.MASK

    def for_risk(self, code: str) -> Action:
        if code in self.risks:
            return self.risks[code]
        return self.risks.get(code.rsplit(".", 1)[0], self.default_risk)

    def for_pii(self, kind: PiiKind) -> Action:
        return self.pii.get(kind, self.default_pii)


@dataclass(frozen=True, slots=True)
class Reason:
    action: Action
    source: str  # a risk code, or "pii:<kind>"
    detail: str


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    reasons: tuple[Reason, ...]
    review: bool  # put in the review queue
    mask_spans: tuple[PiiSpan, ...]  # what to mask when action is MASK


def decide(hits: Iterable[Hit], pii: Iterable[PiiSpan], policy: Policy) -> Verdict:
    reasons: list[Reason] = []
    to_mask: list[PiiSpan] = []
    for hit in hits:
        act = policy.for_risk(hit.risk)
        if act is not Action.ALLOW:
            reasons.append(Reason(act, hit.risk, f"term {hit.term!r} at {hit.start}-{hit.end}"))
    for span in pii:
        act = policy.for_pii(span.kind)
        if act is Action.MASK:
            to_mask.append(span)
        if act is not Action.ALLOW:
            reasons.append(Reason(act, f"pii:{span.kind}", f"at {span.start}-{span.end}"))
    action = max((r.action for r in reasons), default=Action.ALLOW)
    return Verdict(
        action=action,
        reasons=tuple(reasons),
        review=any(r.action is Action.FLAG for r in reasons),
        mask_spans=tuple(to_mask),
    )
