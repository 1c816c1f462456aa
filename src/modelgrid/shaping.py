"""A request as its model's layer and the caller's plan make it, before it is prepared."""

from __future__ import annotations

from dataclasses import replace

from .admission import Admission
from .catalogue import Entry
from .knowledge.retrieval import Source, with_sources
from .layers import layered
from .storage.keys import KeyRecord
from .types import GenerationRequest


def shaped(
    admission: Admission,
    caller: KeyRecord,
    entry: Entry,
    requests: list[GenerationRequest],
    sources: list[Source],
) -> list[GenerationRequest]:
    """The requests as the model's layer makes them (its instructions, the sources found in
    its knowledge, its adapter), held to the plan's max_tokens, and watermarked where the
    plan says (engines that cannot see the logits, upstream ones, leave the flag be). The
    operator's own keys, on no plan, get no watermark, as they get no text label: their
    output is not served to the public."""
    # The sources stay when a quota degrades a layer's request to the plan's small model:
    # the answer is still grounded, and the response cites them.
    requests = [with_sources(r, sources) for r in requests]
    if entry.layer is not None:
        requests = [layered(entry.layer, r) for r in requests]
    capped = admission.capped(caller, requests)
    plan = admission.plan_of(caller)
    if plan is None or not plan.watermark:
        return capped
    return [replace(r, watermark=True) for r in capped]
