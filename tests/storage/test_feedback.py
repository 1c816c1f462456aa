"""Feedback in the database, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC

import pytest

from modelgrid.storage.database import Database
from modelgrid.storage.feedback import FeedbackStore
from modelgrid.storage.tables import feedback

from .test_ledger import migration_round_trip

pytestmark = pytest.mark.anyio


async def test_feedback_is_stored_and_read_newest_first(db: Database) -> None:
    store = FeedbackStore(db)
    first = await store.add("chatcmpl-1", "org_a", "key_1", "small", 1.0, "good")
    await store.add("chatcmpl-2", "org_b", "key_2", "large", 0.0, "")
    found = await store.recent()
    assert [f.content_id for f in found] == ["chatcmpl-2", "chatcmpl-1"]
    assert found[1] == first and found[1].created_at.tzinfo == UTC
    assert [f.org_id for f in await store.recent(org_id="org_a")] == ["org_a"]


async def test_the_migration_matches_the_table_and_downgrades(db: Database) -> None:
    await migration_round_trip(db, (feedback,), "0011", "knowledge_documents")
