"""Stored conversations on both databases: batched durable writes, replay, reads, retention."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from modelgrid.provenance.index import content_ref, index_rows
from modelgrid.provenance.minhash import MinHasher
from modelgrid.provenance.shingles import shingle_hashes
from modelgrid.storage.contents import ContentStore, StoredContent
from modelgrid.storage.database import Database
from modelgrid.storage.tables import provenance_index, stored_contents

from .test_ledger import _alembic, migration_round_trip

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 2, 10, 30, 0, 123456, tzinfo=UTC)
NEVER = 3600.0
LABEL = "本内容由人工智能生成"


def chat(
    content_id: str = "chatcmpl-" + "a" * 32, at: datetime = T0, **changes: Any
) -> StoredContent:
    values: dict[str, Any] = {
        "content_id": content_id,
        "created_at": at,
        "org_id": "org1",
        "key_id": "k" * 32,
        "model": "smollm2-135m-instruct",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Name a colour."}]},
        ],
        "prompt": None,
        "choices": (f"Blue is a calm colour of the sky and the sea.\n\n{LABEL}",),
        "aigc": {"Label": "1", "ContentProducer": "P" * 27, "ProduceID": content_id},
        "label": LABEL,
    }
    values.update(changes)
    return StoredContent(**values)


def completion(content_id: str = "cmpl-" + "b" * 32, **changes: Any) -> StoredContent:
    base = chat(content_id, messages=None, prompt=["Once upon", "a time"], label="")
    return replace(base, **changes)


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return tmp_path / "journal"


async def started(db: Database, journal: Path) -> ContentStore:
    store = ContentStore(db, journal, flush_interval=NEVER)
    await store.start()
    return store


async def count(db: Database, table: sa.Table) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


def test_contents_round_trip_through_json_exactly() -> None:
    for content in (chat(), completion(), completion(prompt=[[1, 2, 3]]), chat(org_id=None)):
        assert StoredContent.from_json(content.to_json()) == content


async def test_appended_contents_are_found_once_committed_with_their_index(
    db: Database, journal: Path
) -> None:
    store = await started(db, journal)
    try:
        a, b = chat(), completion()
        store.append(a)
        store.append(b)
        assert store.pending == 2 and await count(db, stored_contents) == 0
        assert await store.get(a.content_id) == a  # get flushes this process's pending first
        assert store.pending == 0
        assert await store.get(b.content_id) == b
        assert await store.get("chatcmpl-missing") is None
        assert await count(db, provenance_index) == 2 * store.hasher.bands
    finally:
        await store.close()
    assert os.listdir(journal) == []


async def test_a_content_id_is_stored_once(db: Database, journal: Path) -> None:
    store = await started(db, journal)
    try:
        store.append(chat())
        store.append(chat(model="other"))  # same batch
        await store.flush()
        store.append(chat(model="later"))  # later batch: the first committed wins
        assert await store.flush()
        assert await count(db, stored_contents) == 1
        found = await store.get(chat().content_id)
        assert found is not None and found.model == "smollm2-135m-instruct"
        assert await count(db, provenance_index) == store.hasher.bands
    finally:
        await store.close()


async def test_every_choice_is_indexed_and_empty_ones_are_not(db: Database, journal: Path) -> None:
    store = await started(db, journal)
    try:
        content = chat(choices=("one two three four", "five six seven eight", "", "..."))
        store.append(content)
        await store.flush()
        hasher, ref = store.hasher, content_ref(content.content_id)
        bands = {k for t in content.choices[:2] for k in hasher.bands_of(shingle_hashes(t))}
        async with db.engine.connect() as conn:
            rows = (await conn.execute(sa.select(provenance_index))).all()
            stored_ref = (await conn.execute(sa.select(stored_contents.c.ref))).scalar_one()
        assert stored_ref == ref and len(bands) == 2 * hasher.bands  # no band in common
        assert {tuple(r) for r in rows} == {(k, ref) for k in bands}
    finally:
        await store.close()


KILLED = """
import asyncio, os, signal, sys
from pathlib import Path
from modelgrid.provenance.index import content_ref, index_rows
from modelgrid.provenance.minhash import MinHasher
from modelgrid.provenance.shingles import shingle_hashes
from modelgrid.storage.contents import ContentStore, StoredContent
from modelgrid.storage.database import Database

async def main() -> None:
    store = ContentStore(Database(sys.argv[1]), Path(sys.argv[2]), flush_interval=3600)
    await store.start()
    for line in sys.stdin.buffer.read().splitlines():
        store.append(StoredContent.from_json(line))
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


async def test_contents_of_a_killed_process_are_replayed_once_with_their_index(
    db: Database, journal: Path
) -> None:
    killed = [
        chat(f"chatcmpl-killed-{i}", choices=(f"answer number {i} of many",)) for i in range(4)
    ]
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", KILLED, db.url, str(journal)],
        input=b"\n".join(c.to_json() for c in killed),
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert await count(db, stored_contents) == 0
    store = await started(db, journal)
    try:
        assert store.replayed == 4
        for content in killed:
            assert await store.get(content.content_id) == content
        assert await count(db, provenance_index) == 4 * store.hasher.bands
    finally:
        await store.close()
    again = await started(db, journal)
    await again.close()
    assert again.replayed == 0 and await count(db, stored_contents) == 4


async def test_the_ledgers_journal_is_not_taken_for_contents(db: Database, journal: Path) -> None:
    from modelgrid.storage.ledger import Ledger

    ledger = Ledger(db, journal, flush_interval=NEVER)
    await ledger.start()
    store = await started(db, journal)
    await store.close()
    await ledger.close()
    assert store.replayed == 0 and ledger.replayed == 0


async def test_prune_drops_old_contents_and_their_index(db: Database, journal: Path) -> None:
    store = await started(db, journal)
    try:
        for i in range(5):
            store.append(
                chat(f"chatcmpl-{i}", at=T0 + timedelta(days=i), choices=(f"text {i} here",))
            )
        await store.flush()
        assert await store.prune(T0 + timedelta(days=3)) == 3
        assert await store.get("chatcmpl-2") is None and await store.get("chatcmpl-3") is not None
        assert await count(db, stored_contents) == 2
        assert await count(db, provenance_index) == 2 * store.hasher.bands
        assert await store.prune(T0) == 0
    finally:
        await store.close()


async def test_times_are_utc_whatever_they_were_given_in(db: Database, journal: Path) -> None:
    store = await started(db, journal)
    try:
        local = T0.astimezone(timezone(timedelta(hours=8)))
        store.append(chat(at=local))
        found = await store.get(chat().content_id)
        assert found is not None and found.created_at == T0 and found.created_at.tzinfo == UTC
    finally:
        await store.close()


async def test_the_migration_matches_the_tables_and_downgrades(db: Database) -> None:
    from modelgrid.storage.tables import review_items

    await migration_round_trip(
        db, (stored_contents, provenance_index, review_items), "0008", "audit_leaves"
    )


async def test_the_narrow_index_migration_indexes_what_was_stored(db: Database) -> None:
    texts = {"chatcmpl-0": "one two three four five", "chatcmpl-1": "six seven eight nine ten"}
    async with db.engine.begin() as conn:
        await conn.run_sync(_alembic, "downgrade", "0009")  # a store as 0009 left it
        for content_id, text in texts.items():
            choices = orjson.dumps([text, ""]).decode()
            row = {"content_id": content_id, "created_at": T0, "model": "m", "request": "{}"}
            await conn.execute(
                stored_contents.insert().values(row | {"choices": choices, "aigc": "{}"})
            )
        await conn.run_sync(_alembic, "upgrade", "head")
        rows = {tuple(r) for r in await conn.execute(sa.select(provenance_index))}
        c = stored_contents.c
        refs = {r.content_id: r.ref for r in await conn.execute(sa.select(c.content_id, c.ref))}
    assert refs == {content_id: content_ref(content_id) for content_id in texts}
    responses = [(content_id, [text, ""], "") for content_id, text in texts.items()]
    assert rows == set(index_rows(MinHasher(), responses))
    assert len(rows) == 2 * MinHasher().bands
