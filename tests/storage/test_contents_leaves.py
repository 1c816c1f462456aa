"""A kept response's audit leaf, made and committed with the stored conversation (both
databases): the same leaf the audit log would have journaled, never lost, never twice."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelgrid.audit.keys import AuditKeys
from modelgrid.audit.record import ReviewVerdict, build_record, prompt_text
from modelgrid.audit.store import AuditLog
from modelgrid.storage.contents import ContentStore, StoredContent
from modelgrid.storage.database import Database
from modelgrid.storage.tables import audit_checkpoints, audit_leaves, stored_contents

from .test_contents import KILLED, NEVER, T0, chat, completion, count

pytestmark = pytest.mark.anyio

REVIEW: tuple[ReviewVerdict, ...] = (
    {"stage": "input", "action": "allow", "risks": []},
    {"stage": "output", "action": "flag", "risks": ["A.1.1", "pii:email"]},
)


def audited(content: StoredContent) -> StoredContent:
    return replace(content, review=REVIEW)


@pytest.fixture
def keys(tmp_path: Path) -> AuditKeys:
    return AuditKeys.load_or_create(tmp_path / "keys")


@asynccontextmanager
async def stores(
    db: Database, tmp_path: Path, keys: AuditKeys
) -> AsyncIterator[tuple[AuditLog, ContentStore]]:
    """The audit log and the stored conversations as the server builds them, started (what
    dead processes left replayed), closed after."""
    audit = AuditLog(db, tmp_path / "audit-journal", keys, flush_interval=NEVER)
    contents = ContentStore(db, tmp_path / "journal", flush_interval=NEVER, audit=audit)
    await audit.start()
    await contents.start()
    try:
        yield audit, contents
    finally:
        await contents.close()
        await audit.close()


def test_a_responses_review_goes_through_its_journal_line() -> None:
    for content in (audited(chat()), audited(completion(prompt="Once upon a time"))):
        assert StoredContent.from_json(content.to_json()) == content


@pytest.mark.parametrize(
    ("content", "prompt", "response"),
    [
        # A chat's messages as canonical JSON; its one answer as served, label and all.
        (chat(), prompt_text(chat().messages or []), chat().choices[0]),
        # A completion's text prompt; its choices joined as the audit log joins them.
        (
            completion(prompt="Once upon a time", choices=("one", "two")),
            "Once upon a time",
            "one\n\ntwo",
        ),
    ],
)
def test_the_leaf_is_the_one_the_audit_log_journals_for_a_response(
    keys: AuditKeys, content: StoredContent, prompt: str, response: str
) -> None:
    secret = keys.hmac_secret
    assert audited(content).leaf(secret) == build_record(
        secret,
        content_id=content.content_id,
        time=T0,
        org_id="org1",
        key_id="k" * 32,
        model=content.model,
        prompt=prompt,
        response=response,
        review=REVIEW,
        aigc=content.aigc,
    )


async def test_leaves_commit_with_their_responses_and_receipts_prove_them(
    db: Database, tmp_path: Path, keys: AuditKeys
) -> None:
    async with stores(db, tmp_path, keys) as (audit, contents):
        kept = [audited(chat(f"chatcmpl-leaf-{i}", choices=(f"answer {i}",))) for i in range(3)]
        unaudited = chat("chatcmpl-no-leaf")  # its leaf went to the audit log's own journal
        for content in [*kept, unaudited]:
            contents.append(content)
        assert audit.pending == 0  # nothing in the audit log's journal
        assert await contents.flush()
        assert await count(db, stored_contents) == 4
        assert await count(db, audit_leaves) == 3
        for content in kept:
            receipt = await audit.lookup(content.content_id)
            assert receipt is not None and receipt.record == content.leaf(keys.hmac_secret)
        assert await audit.lookup(unaudited.content_id) is None
        # A leaf is stored once, however often its response is committed again.
        contents.append(kept[0])
        assert await contents.flush()
        assert await count(db, audit_leaves) == 3
        assert await count(db, audit_checkpoints) == 1


async def test_a_store_without_the_audit_log_keeps_such_responses_journaled(
    db: Database, tmp_path: Path, keys: AuditKeys
) -> None:
    bare = ContentStore(db, tmp_path / "journal", flush_interval=NEVER)
    await bare.start()
    bare.append(audited(chat()))
    assert not await bare.flush()  # refused, logged: the leaf would have been lost
    assert bare.pending == 1 and await count(db, stored_contents) == 0
    await bare.close()
    async with stores(db, tmp_path, keys) as (_, contents):
        assert contents.replayed == 1
        assert await count(db, stored_contents) == 1 and await count(db, audit_leaves) == 1


async def test_a_leaf_that_cannot_be_made_does_not_hold_up_the_batch(
    db: Database, tmp_path: Path, keys: AuditKeys
) -> None:
    async with stores(db, tmp_path, keys) as (_, contents):
        bad: ReviewVerdict = {"stage": "input", "action": "shrug", "risks": []}  # type: ignore[typeddict-item]
        contents.append(replace(chat("chatcmpl-bad"), review=(bad,)))
        contents.append(audited(chat("chatcmpl-fine")))
        assert await contents.flush()
        assert await count(db, stored_contents) == 2
        async with db.engine.connect() as conn:
            ids = (await conn.execute(sa.select(audit_leaves.c.content_id))).scalars().all()
        assert ids == ["chatcmpl-fine"]


async def test_a_killed_processes_responses_are_replayed_with_their_leaves(
    db: Database, tmp_path: Path, keys: AuditKeys
) -> None:
    killed = [audited(chat(f"chatcmpl-killed-{i}", choices=(f"answer {i}",))) for i in range(4)]
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", KILLED, db.url, str(tmp_path / "journal")],
        input=b"\n".join(c.to_json() for c in killed),
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    async with stores(db, tmp_path, keys) as (audit, contents):
        assert contents.replayed == 4
        for content in killed:
            receipt = await audit.lookup(content.content_id)
            assert receipt is not None and receipt.record == content.leaf(keys.hmac_secret)
