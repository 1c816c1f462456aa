"""Named policy settings to the verdict rules of each stage (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from .config import PolicySettings
from .taxonomy import CLASSES, RISKS
from .verdict import Action, Policy

ACTIONS = {"allow": Action.ALLOW, "flag": Action.FLAG, "mask": Action.MASK, "refuse": Action.REFUSE}
ACTION_NAMES = {action: name for name, action in ACTIONS.items()}


@dataclass(frozen=True, slots=True)
class StagePolicies:
    """What the review does to a request's prompt and to its answer; None: not reviewed."""

    input: Policy | None
    output: Policy | None

    @property
    def active(self) -> bool:
        return self.input is not None or self.output is not None


NOT_REVIEWED = StagePolicies(None, None)


def compile_policy(settings: PolicySettings) -> StagePolicies:
    risks = {code: ACTIONS[name] for code, name in settings.risks.items()}
    default = ACTIONS[settings.default_risk]

    def stage(enabled: bool, pii: str) -> Policy | None:
        if not enabled:
            return None
        return Policy(risks=risks, default_risk=default, default_pii=ACTIONS[pii])

    return StagePolicies(
        stage(settings.input, settings.input_pii), stage(settings.output, settings.output_pii)
    )


def strictest(a: StagePolicies, b: StagePolicies) -> StagePolicies:
    """Both policies at once: each risk and each kind of personal information gets the more
    severe of the two actions; a stage either reviews is reviewed."""
    return StagePolicies(_stricter(a.input, b.input), _stricter(a.output, b.output))


def _stricter(a: Policy | None, b: Policy | None) -> Policy | None:
    if a is None or b is None:
        return a or b
    # Resolved per risk code, so a class entry of one never hides a risk entry of the other.
    risks = {r.code: max(a.for_risk(r.code), b.for_risk(r.code)) for r in RISKS}
    risks |= {c.code: max(_class_action(a, c.code), _class_action(b, c.code)) for c in CLASSES}
    kinds = set(a.pii) | set(b.pii)
    return Policy(
        risks=risks,
        default_risk=max(a.default_risk, b.default_risk),
        pii={kind: max(a.for_pii(kind), b.for_pii(kind)) for kind in kinds},
        default_pii=max(a.default_pii, b.default_pii),
    )


def _class_action(policy: Policy, class_code: str) -> Action:
    return policy.risks.get(class_code, policy.default_risk)
