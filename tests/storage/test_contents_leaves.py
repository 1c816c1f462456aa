"""A kept response's audit leaf, made and committed with the stored conversation (both
databases): the same leaf the audit log would have journaled, never lost, never twice."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
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


async def stores(db: Database, tmp_path: Path, keys: AuditKeys) -> tuple[AuditLog, ContentStore]:
    audit = AuditLog(db, tmp_path / "audit-journal", keys, flush_interval=NEVER)
    contents = ContentStore(db, tmp_path / "journal", flush_interval=NEVER, audit=audit)
    await audit.start()
    await contents.start()
    return audit, contents


def test_a_responses_review_goes_through_its_journal_line() -> None:
    for content in (audited(chat()), audited(completion(prompt="Once upon a time"))):
        assert StoredContent.from_json(content.to_json()) == content


def test_the_leaf_is_the_one_the_audit_log_journals_for_a_response(keys: AuditKeys) -> None:
    secret = keys.hmac_secret
    content = audited(chat())
    assert content.messages is not None
    assert content.leaf(secret) == build_record(
        secret,
        content_id=content.content_id,
        time=T0,
        org_id="org1",
        key_id="k" * 32,
        model=content.model,
        prompt=prompt_text(content.messages),
        response=content.choices[0],
        review=REVIEW,
        aigc=content.aigc,
    )
    two = audited(completion(prompt="Once upon a time", choices=("one", "two"), aigc={}))
    assert two.leaf(secret) == build_record(
        secret,
        content_id=two.content_id,
        time=T0,
        org_id="org1",
        key_id="k" * 32,
        model=two.model,
        prompt="Once upon a time",
        response="one\n\ntwo",  # the choices as the audit log joins them
        review=REVIEW,
    )


async def test_leaves_commit_with_their_responses_and_receipts_prove_them(
    db: Database, tmp_path: Path, keys: AuditKeys
) -> None:
    audit, contents = await stores(db, tmp_path, keys)
    try:
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
    finally:
        await contents.close()
        await audit.close()


async def test_a_store_without_the_audit_log_keeps_such_responses_journaled(
    db: Database, tmp_path: Path, keys: AuditKeys
) -> None:
    bare = ContentStore(db, tmp_path / "journal", flush_interval=NEVER)
    await bare.start()
    bare.append(audited(chat()))
    assert not await bare.flush()  # refused, logged: the leaf would have been lost
    assert bare.pending == 1 and await count(db, stored_contents) == 0
    await bare.close()
    audit, contents = await stores(db, tmp_path, keys)
    try:
        assert contents.replayed == 1
        assert await count(db, stored_contents) == 1 and await count(db, audit_leaves) == 1
    finally:
        await contents.close()
        await audit.close()


async def test_a_leaf_that_cannot_be_made_does_not_hold_up_the_batch(
    db: Database, tmp_path: Path, keys: AuditKeys
) -> None:
    audit, contents = await stores(db, tmp_path, keys)
    try:
        bad: ReviewVerdict = {"stage": "input", "action": "shrug", "risks": []}  # type: ignore[typeddict-item]
        contents.append(replace(chat("chatcmpl-bad"), review=(bad,)))
        contents.append(audited(chat("chatcmpl-fine")))
        assert await contents.flush()
        assert await count(db, stored_contents) == 2
        async with db.engine.connect() as conn:
            ids = (await conn.execute(sa.select(audit_leaves.c.content_id))).scalars().all()
        assert ids == ["chatcmpl-fine"]
    finally:
        await contents.close()
        await audit.close()


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
    audit, contents = await stores(db, tmp_path, keys)
    try:
        assert contents.replayed == 4
        for content in killed:
            receipt = await audit.lookup(content.content_id)
            assert receipt is not None and receipt.record == content.leaf(keys.hmac_secret)
    finally:
        await contents.close()
        await audit.close()
