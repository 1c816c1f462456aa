"""Labels for AI-generated content (GB 45438-2025; the EU AI Act's Article 50).

Explicit: a text label with an AI element and a generation element, at the start or the end of
each choice, in the wording and position each plan sets. Implicit: the metadata of GB 45438's
Appendix E on every response, as a field (``AIGC``) and a header (``aigc``), naming the
operator's provider code and the content id (the completion's ``id``).

Machine-readable output (``response_format`` JSON) carries the implicit label only: a text
label inside it would break the JSON the caller asked for. The operator's own admin keys, on no
plan, get the implicit label only too: their output is not served to the public.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # settings validates labels with label_problem, below
    from .plan_settings import PlanSettings

AI_ELEMENTS = ("人工智能", "ai")
GENERATION_ELEMENTS = ("生成", "合成", "generated", "synthesi")


def label_problem(text: str) -> str | None:
    """What a label's wording lacks (an AI element, a generation element); None if nothing."""
    folded = text.casefold()
    if not any(e in folded for e in AI_ELEMENTS):
        return "it must name AI (人工智能 or AI)"
    if not any(e in folded for e in GENERATION_ELEMENTS):
        return "it must say the content was generated (生成 or 合成, or generated/synthesised)"
    return None


@dataclass(frozen=True, slots=True)
class ExplicitLabel:
    text: str
    position: Literal["start", "end"]

    def apply(self, content: str) -> str:
        return (
            f"{self.text}\n\n{content}" if self.position == "start" else f"{content}\n\n{self.text}"
        )

    @property
    def opening(self) -> str | None:
        """What a stream sends before the content."""
        return f"{self.text}\n\n" if self.position == "start" else None

    @property
    def closing(self) -> str | None:
        """What a stream sends after it."""
        return f"\n\n{self.text}" if self.position == "end" else None


class Labels:
    def __init__(self, provider_code: str = "") -> None:
        self.provider_code = provider_code

    def explicit(self, plan: PlanSettings | None, json_output: bool) -> ExplicitLabel | None:
        if plan is None or json_output or plan.label_position == "none":
            return None
        return ExplicitLabel(plan.label_text, plan.label_position)

    def metadata(self, content_id: str) -> dict[str, str]:
        """Appendix E's fields; ``ReservedCode1`` is left for the audit log's signature."""
        return {
            "Label": "1",
            "ContentProducer": self.provider_code,
            "ProduceID": content_id,
            "ReservedCode1": "",
            "ContentPropagator": self.provider_code,
            "PropagateID": content_id,
            "ReservedCode2": "",
        }
