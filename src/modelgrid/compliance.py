"""The compliance steps of a request's path, each called by the gateway where it belongs:
review the prompt (before generation), review the answer (as it streams, or whole), and keep
the records of the response once it has ended (the audit leaf, flagged items for the review
queue)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .audit.keys import AuditKeys
from .audit.record import MAX_CONTENT_ID, ActionName, build_record, from_review, prompt_text
from .audit.store import AuditLog
from .errors import UpstreamError
from .review.policy import StagePolicies
from .review.reviewer import Reviewer
from .review.screen import ALLOWED, OutputFilter, Screened, combined, reasons_json, screen
from .review.verdict import Action, Verdict, decide
from .settings import PlanSettings
from .storage.contents import ContentStore, StoredContent
from .storage.keys import KeyRecord
from .storage.review_queue import ReviewItem, ReviewQueue, new_item

log = logging.getLogger("modelgrid.compliance")

_GUARD_UNREACHABLE = "The safety review's guard model is unreachable; retry later."


@dataclass(slots=True)
class Screening:
    """One request's review: its policies, what was decided, and what was served."""

    policies: StagePolicies
    refusal_text: str
    prompt: Verdict = ALLOWED
    answers: list[Verdict] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        """The prompt was refused: no generation, the refusal text instead."""
        return self.prompt.action is Action.REFUSE

    def verdicts(self) -> list[tuple[str, Verdict]]:
        out = [("input", self.prompt)] if self.policies.input is not None else []
        if self.policies.output is not None:
            out.append(("output", combined(self.answers)))
        return out


class Compliance:
    def __init__(
        self,
        reviewer: Reviewer,
        audit: AuditLog | None = None,
        keys: AuditKeys | None = None,
        contents: ContentStore | None = None,
        queue: ReviewQueue | None = None,
    ) -> None:
        self.reviewer = reviewer
        self.audit = audit
        self.keys = keys
        self.contents = contents
        self.queue = queue

    def screening(self, plan: PlanSettings, model_policies: tuple[str, ...]) -> Screening:
        """The plan's policy with the model's and its layers' (the gateway gives the
        operator's own keys the default plan's)."""
        policies = self.reviewer.policies(plan.review_policy, model_policies)
        return Screening(policies, plan.refusal_text)

    async def review_prompt(
        self, screening: Screening, texts: Sequence[str], messages: list[dict[str, str]]
    ) -> list[str]:
        """Review a prompt's texts before generation; returns them masked where the policy
        masks (and records the verdict, which may refuse the request)."""
        policy = screening.policies.input
        if policy is None or not texts:
            return list(texts)
        matcher = self.reviewer.matcher
        screened = [screen(matcher, text, policy) for text in texts]
        verdicts = [s.verdict for s in screened]
        guard = self.reviewer.guard
        if guard is not None and max(v.action for v in verdicts) is not Action.REFUSE:
            hits = await guard.check(messages)
            if hits is None and not guard.settings.fail_open:
                raise UpstreamError(_GUARD_UNREACHABLE, status=503)
            if hits:
                verdicts.append(decide(hits, [], policy))
        screening.prompt = combined(verdicts)
        return [s.text for s in screened]

    def answer_filter(self, screening: Screening) -> OutputFilter | None:
        policy = screening.policies.output
        return None if policy is None else OutputFilter(self.reviewer.matcher, policy)

    async def review_answer(
        self, screening: Screening, text: str, prompt: Sequence[dict[str, Any]] | str
    ) -> Screened:
        """Review a whole answer before it is returned: the term lists, then the guard model
        (which reads it after ``prompt``)."""
        policy = screening.policies.output
        if policy is None:
            return Screened(text, ALLOWED)
        screened = screen(self.reviewer.matcher, text, policy)
        if screened.verdict.action is not Action.REFUSE:
            guarded = await self.guard_answer(screening, prompt, screened.text)
            if guarded is not None:
                screened = Screened(screened.text, combined([screened.verdict, guarded]))
        screening.answers.append(screened.verdict)
        return screened

    async def guard_answer(
        self, screening: Screening, prompt: Sequence[dict[str, Any]] | str, answer: str
    ) -> Verdict | None:
        """The guard model's verdict on a finished answer; None when there is no guard for
        answers or it found nothing. A guard that cannot be asked either lets the answer
        through or, with ``fail_open = false``, withholds it (a 503, or a stream's error
        event)."""
        guard, policy = self.reviewer.guard, screening.policies.output
        if guard is None or policy is None or not guard.settings.answers:
            return None
        conversation = (
            [{"role": "user", "content": prompt}]
            if isinstance(prompt, str)
            else [{"role": m.get("role", "user"), "content": m.get("content", "")} for m in prompt]
        )
        hits = await guard.check([*conversation, {"role": "assistant", "content": answer}])
        if hits is None and not guard.settings.fail_open:
            raise UpstreamError(_GUARD_UNREACHABLE, status=503)
        return decide(hits, [], policy) if hits else None

    def record(
        self,
        content_id: str,
        caller: KeyRecord,
        model: str,
        prompt: Sequence[dict[str, Any]] | str,
        answers: Sequence[str],
        screening: Screening,
        aigc: dict[str, str] | None,
        label: str = "",
        keep_text: bool = True,
    ) -> None:
        """Once the response has ended: its audit leaf, the conversation kept (for exports
        and provenance look-ups), and its flagged items queued for a person."""
        verdicts = screening.verdicts()
        review = tuple(from_review(stage, v) for stage, v in verdicts)  # type: ignore[arg-type]
        # A kept response carries its review, and the stored conversations make its audit
        # leaf when they commit it: one journal line on the request path, and the hashing
        # off the event loop (storage/contents.py).
        leaf_kept = (
            keep_text
            and self.contents is not None
            and self.contents.audit is not None
            and 0 < len(content_id) <= MAX_CONTENT_ID
        )
        if self.contents is not None and keep_text:
            self.contents.append(
                StoredContent(
                    content_id=content_id,
                    created_at=datetime.now(UTC),
                    org_id=caller.org_id,
                    key_id=caller.id,
                    model=model,
                    messages=None if isinstance(prompt, str) else list(prompt),
                    prompt=prompt if isinstance(prompt, str) else None,
                    choices=tuple(answers),
                    aigc=aigc or {},
                    label=label,
                    review=review if leaf_kept else None,
                )
            )
        if self.queue is not None:
            for stage, verdict in verdicts:
                if verdict.review:
                    text = "\n\n".join(answers) if stage == "output" else _prompt_excerpt(prompt)
                    self.queue.append(
                        new_item(
                            content_id,
                            caller.org_id,
                            caller.id,
                            model,
                            stage,  # type: ignore[arg-type]
                            reasons_json(verdict),
                            text,
                        )
                    )
        if leaf_kept or self.audit is None or self.keys is None:
            return
        try:
            record = build_record(
                self.keys.hmac_secret,
                content_id=content_id,
                time=datetime.now(UTC),
                org_id=caller.org_id,
                key_id=caller.id,
                model=model,
                prompt=prompt if isinstance(prompt, str) else prompt_text(prompt),
                response="\n\n".join(answers),
                review=review,
                aigc=aigc or {},
            )
            self.audit.append(record)
        except Exception:  # the response is out; its record must not fail the request
            log.exception("audit: record not appended", extra={"content_id": content_id})


def audit_decision(audit: AuditLog, keys: AuditKeys) -> Callable[[ReviewItem], None]:
    """What the review queue calls with each decision: a leaf of its own in the audit log
    (content id ``review:<item>``), naming the item's content, the decider and the outcome."""

    def record(item: ReviewItem) -> None:
        action: ActionName = "allow" if item.status == "approved" else "refuse"
        risks = sorted({r.get("source", "") for r in item.reasons})
        audit.append(
            build_record(
                keys.hmac_secret,
                content_id=f"review:{item.id}",
                time=item.decided_at or datetime.now(UTC),
                org_id=item.org_id,
                key_id=item.decided_by,
                model=item.model,
                prompt=item.content_id,  # the decided content, digested like any prompt
                response=item.note,
                review=[{"stage": item.stage, "action": action, "risks": risks}],
                aigc={"ProduceID": item.content_id},
            )
        )

    return record


def _prompt_excerpt(prompt: Sequence[dict[str, Any]] | str) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(f"{m.get('role', '')}: {m.get('content', '')}" for m in prompt)
