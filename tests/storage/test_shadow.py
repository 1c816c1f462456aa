"""Shadow pairs on both databases: a pair becomes training data once both verdicts are known,
from its own judging or, for the answer the caller got, from the caller's feedback."""

from __future__ import annotations

import pytest

from modelgrid.storage.database import Database
from modelgrid.storage.feedback import FeedbackStore
from modelgrid.storage.shadow import ShadowPair, ShadowStore

pytestmark = pytest.mark.anyio


def pair(content_id: str, served: str, **verdicts: object) -> ShadowPair:
    return ShadowPair(
        content_id, "auto", "acme", served, f"q {content_id}", "small says", "large says",
        **verdicts,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_pairs_judged_or_settled_by_feedback_are_training_data(db: Database) -> None:
    store, feedback = ShadowStore(db), FeedbackStore(db)
    await store.add(pair("c1", "small", small_correct=True, large_correct=False))
    await store.add(pair("c2", "small", large_correct=True))  # the caller's feedback: bad
    await store.add(pair("c3", "large", small_correct=False))  # no feedback: unsettled
    await store.add(pair("c4", "small"))  # only one side can come from feedback
    await feedback.add("c2", "acme", None, "small", 0.0, "wrong")
    await feedback.add("c4", "acme", None, "small", 1.0, "")
    await feedback.add("c3", "acme", None, "small", 1.0, "")  # not the model that answered

    found = await store.outcomes("auto", "small", "large")
    assert [(o.prompt, o.small_correct, o.large_correct) for o in found] == [
        ("q c1", True, False),
        ("q c2", False, True),
    ]
    assert len(await store.pairs("auto")) == 4 and await store.outcomes("x", "s", "l") == []
