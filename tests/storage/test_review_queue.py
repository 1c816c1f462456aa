"""The review queue on both databases: durable adds, newest-first lists, one decision each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelgrid.storage.database import Database
from modelgrid.storage.review_queue import (
    EXCERPT_CHARS,
    AlreadyDecided,
    ReviewItem,
    ReviewQueue,
    UnknownItem,
    excerpt,
    new_item,
)

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 2, 8, 0, 0, 654321, tzinfo=UTC)
REASONS = [{"action": "flag", "source": "A.1.4", "detail": "term 'x' at 3-4"}]


def item(number: int, stage: str = "output", text: str = "some flagged text") -> ReviewItem:
    return new_item(
        content_id=f"chatcmpl-{number:032x}",
        org_id="org1",
        key_id="k" * 32,
        model="smollm2-135m-instruct",
        stage="input" if stage == "input" else "output",
        reasons=REASONS,
        text=text,
        now=T0 + timedelta(seconds=number),
    )


@pytest.fixture
async def queue(db: Database, tmp_path: Path) -> AsyncIterator[ReviewQueue]:
    made = ReviewQueue(db, tmp_path / "journal", flush_interval=3600)
    await made.start()
    yield made
    await made.close()


def test_an_excerpt_is_at_most_the_limit_around_what_was_flagged() -> None:
    assert excerpt("short") == "short"
    text = "a" * 3000 + "FLAG" + "b" * 3000
    head = excerpt(text)
    assert len(head) == EXCERPT_CHARS and head.startswith("aaa") and head.endswith("…")
    around = excerpt(text, around=3000)
    assert len(around) == EXCERPT_CHARS and "FLAG" in around
    assert around.startswith("…") and around.endswith("…")
    tail = excerpt(text, around=len(text) - 1)
    assert len(tail) == EXCERPT_CHARS and tail.startswith("…") and tail.endswith("b")
    assert excerpt("x" * 2000) == "x" * 2000


def test_items_round_trip_through_json_exactly() -> None:
    made = item(1)
    assert made.id.startswith("rev_") and made.status == "pending"
    assert ReviewItem.from_json(made.to_json()) == made
    assert item(2).id != item(2).id


async def test_items_are_listed_newest_first_and_by_status(queue: ReviewQueue) -> None:
    made = [item(i, stage="input" if i % 2 else "output") for i in range(5)]
    for one in made:
        queue.append(one)
    assert await queue.list_items() == made[::-1]  # listing flushes this process's first
    assert await queue.list_items(limit=2) == made[::-1][:2]
    await queue.decide(made[1].id, "reject", "key1", "mg-abcdefgh", note="fine really")
    pending = await queue.list_items("pending")
    assert [i.id for i in pending] == [m.id for m in made[::-1] if m is not made[1]]
    [rejected] = await queue.list_items("rejected")
    assert rejected.id == made[1].id and rejected.status == "rejected"
    assert await queue.list_items("approved") == []
    assert await queue.get(made[3].id) == made[3]
    assert await queue.get("rev_missing") is None


async def test_a_decision_is_recorded_once_and_handed_on(db: Database, tmp_path: Path) -> None:
    decided: list[ReviewItem] = []
    queue = ReviewQueue(db, tmp_path / "journal", flush_interval=3600, on_decision=decided.append)
    await queue.start()
    try:
        one = item(1)
        queue.append(one)
        before = datetime.now(UTC)
        done = await queue.decide(one.id, "approve", "key1", "mg-abcdefgh", "ok")
        assert (done.status, done.decided_by, done.decided_by_prefix, done.note) == (
            "approved",
            "key1",
            "mg-abcdefgh",
            "ok",
        )
        assert done.decided_at is not None and before <= done.decided_at <= datetime.now(UTC)
        assert decided == [done] and await queue.get(one.id) == done
        with pytest.raises(AlreadyDecided) as raised:
            await queue.decide(one.id, "reject", "key2")
        assert raised.value.item == done and decided == [done]
        with pytest.raises(UnknownItem):
            await queue.decide("rev_missing", "approve", "key1")
    finally:
        await queue.close()


async def test_of_concurrent_decisions_exactly_one_wins(queue: ReviewQueue) -> None:
    one = item(1)
    queue.append(one)
    await queue.flush()
    results = await asyncio.gather(
        *(queue.decide(one.id, "approve", f"key{n}") for n in range(6)), return_exceptions=True
    )
    wins = [r for r in results if isinstance(r, ReviewItem)]
    assert len(wins) == 1 and all(isinstance(r, AlreadyDecided) for r in results if r not in wins)
    assert (await queue.get(one.id)) == wins[0]


async def test_a_dead_process_items_are_replayed_once(db: Database, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    journal.mkdir()
    lost = [item(i) for i in range(3)]
    dead = journal / "review-999999-0-deadbeef.jsonl"
    dead.write_bytes(b"".join(i.to_json() + b"\n" for i in lost) + lost[0].to_json()[:30])
    queue = ReviewQueue(db, journal, flush_interval=3600)
    await queue.start()
    try:
        assert queue.replayed == 3 and not dead.exists()
        # A replay of an item already decided leaves the decision alone.
        await queue.decide(lost[0].id, "approve", "key1")
        dead.write_bytes(lost[0].to_json() + b"\n")
        again = ReviewQueue(db, journal, flush_interval=3600)
        await again.start()
        await again.close()
        assert again.replayed == 1
        found = await queue.get(lost[0].id)
        assert found is not None and found.status == "approved"
        assert len(await queue.list_items()) == 3
    finally:
        await queue.close()
