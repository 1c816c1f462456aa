"""The writer process, really started: it commits what the journals hand over, on both
databases; a dead writer's batches are committed in the server and a new writer follows."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
from pathlib import Path

import httpx
import openai
import pytest
import sqlalchemy as sa

from modelgrid.audit.keys import AuditKeys
from modelgrid.journals import Journals, build_journals
from modelgrid.settings import Settings
from modelgrid.storage.database import Database
from modelgrid.storage.tables import audit_leaves, ledger, stored_contents
from modelgrid.writer import WriterError, WriterProcess

from .audit.logs import sample
from .services import run_server
from .storage.test_contents import chat
from .storage.test_ledger import entry, wait_for

pytestmark = pytest.mark.anyio


async def count(db: Database, table: sa.Table) -> int:
    async with db.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(table)
        return int((await conn.execute(query)).scalar_one())


async def started(journals: Journals) -> Journals:
    for store in journals.by_name().values():
        await store.start()
    return journals


async def closed(journals: Journals) -> None:
    for store in journals.by_name().values():
        await store.close()


def settings_for(db: Database, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db.url)


async def test_the_writer_commits_what_each_journal_hands_over(
    db: Database, tmp_path: Path
) -> None:
    settings = settings_for(db, tmp_path)
    writer = WriterProcess(settings)
    await writer.start()
    journals = await started(build_journals(settings, db, AuditKeys.load_or_create(tmp_path)))
    try:
        assert writer.pid is not None and writer.pid != os.getpid()
        handing = await started(build_journals(settings, db, journals.audit.keys, writer))
        for i in range(5):
            handing.ledger.append(entry(f"req-{i}"))
            handing.audit.append(sample(i))
            handing.contents.append(chat(f"chatcmpl-{i:032d}"))
        for store in handing.by_name().values():
            assert await store.flush()
        assert writer.batches == 3 and writer.starts == 1
        assert await count(db, ledger) == 5
        assert await count(db, audit_leaves) == 5
        assert await count(db, stored_contents) == 5
        # Committed as the server would have: read back through the server's own stores.
        assert (await journals.contents.get(f"chatcmpl-{3:032d}")) == chat(f"chatcmpl-{3:032d}")
        receipt = await journals.audit.lookup("chatcmpl-000004")
        assert receipt is not None and receipt.record == sample(4)
        await closed(handing)
    finally:
        await writer.close()
        await closed(journals)
    assert writer.pid is None


async def test_a_dead_writers_batches_are_committed_here_then_a_new_writer_takes_over(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(db, tmp_path)
    writer = WriterProcess(settings, restart_seconds=0.5)
    await writer.start()
    journals = await started(
        build_journals(settings, db, AuditKeys.load_or_create(tmp_path), writer)
    )
    try:
        journals.ledger.append(entry("before"))
        assert await journals.ledger.flush()
        first = writer.pid
        assert first is not None and writer.batches == 1
        os.kill(first, signal.SIGKILL)
        await wait_for(lambda: writer.pid is None)  # until its end is noticed
        journals.ledger.append(entry("while-dead"))
        with caplog.at_level(logging.WARNING):
            assert await journals.ledger.flush()  # committed in this process
        assert "committing here" in caplog.text
        assert writer.batches == 1 and await count(db, ledger) == 2
        await asyncio.sleep(0.5)  # the restart delay
        journals.ledger.append(entry("after"))
        assert await journals.ledger.flush()
        assert writer.starts == 2 and writer.batches == 2
        assert writer.pid not in (None, first)
        assert await count(db, ledger) == 3
    finally:
        await closed(journals)
        await writer.close()


async def test_a_batch_the_writer_cannot_commit_is_an_error_and_bad_lines_are_skipped(
    db: Database, tmp_path: Path
) -> None:
    settings = settings_for(db, tmp_path)
    AuditKeys.load_or_create(settings.data_dir)
    writer = WriterProcess(settings)
    await writer.start()
    try:
        with pytest.raises(WriterError, match="KeyError"):
            await writer.commit("no-such-journal", b"{}\n")
        await writer.commit("ledger", b"not json\n" + entry("good").to_json() + b"\n{}\n")
        assert await count(db, ledger) == 1
        assert writer.batches == 1
    finally:
        await writer.close()


async def test_a_batch_the_writers_database_refuses_stays_pending_until_committed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A database the writer cannot reach: its stores build, its commits fail.
    db = Database(f"sqlite:///{tmp_path / 'ok.db'}")
    await db.migrate()
    broken = Settings(data_dir=tmp_path / "data", database_url="postgresql://nobody@127.0.0.1:1/x")
    AuditKeys.load_or_create(broken.data_dir)
    writer = WriterProcess(broken)
    await writer.start()
    journals = await started(build_journals(broken, db, AuditKeys.load_or_create(tmp_path), writer))
    try:
        journals.ledger.append(entry("kept"))
        assert not await journals.ledger.flush()  # the writer's database refuses: retried
        assert journals.ledger.pending == 1
    finally:
        await writer.close()  # now there is none: the last flush commits here
        await closed(journals)
    assert await count(db, ledger) == 1
    await db.close()


async def test_a_writer_that_cannot_be_started_leaves_the_commits_here(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(db, tmp_path)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    writer = WriterProcess(settings, restart_seconds=0)
    await writer.start()  # logged, not raised
    assert writer.pid is None and writer.starts == 0
    journals = await started(
        build_journals(settings, db, AuditKeys.load_or_create(tmp_path), writer)
    )
    try:
        journals.ledger.append(entry("here"))
        assert await journals.ledger.flush()
        assert await count(db, ledger) == 1 and writer.batches == 0
    finally:
        await closed(journals)
        await writer.close()


def writer_children(pid: int) -> list[int]:
    """The server's children running the writer."""
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        if b"modelgrid.writer_main" in Path(f"/proc/{child}/cmdline").read_bytes():
            found.append(int(child))
    return found


def test_a_server_commits_through_its_writer_and_stops_it_on_shutdown(tmp_path: Path) -> None:
    with run_server(tmp_path) as server:
        writers = writer_children(server.pid)
        assert len(writers) == 1
        key = server.new_key("written")
        client = openai.OpenAI(base_url=server.base_url, api_key=key)
        raw = client.chat.completions.with_raw_response.create(
            model="smollm2-135m-instruct",
            messages=[{"role": "user", "content": "Name a colour."}],
            max_tokens=4,
        )
        reply = raw.parse()
        admin = {"Authorization": f"Bearer {server.admin_key}"}
        # Both reads flush the server's journals first, which waits for the writer's commit.
        r = httpx.get(f"{server.url}/admin/v1/orgs/written/ledger", headers=admin)
        entries = {e["request_id"]: e for e in r.json()["data"]}
        assert reply.usage is not None
        assert entries[raw.headers["x-request-id"]]["tokens_out"] == reply.usage.completion_tokens
        headers = {"Authorization": f"Bearer {key}"}
        receipt = httpx.get(f"{server.base_url}/provenance/{reply.id}", headers=headers)
        assert receipt.status_code == 200 and receipt.json()["content_id"] == reply.id
        assert "committing here" not in server.log()
        metrics = httpx.get(f"{server.url}/metrics").text
        assert re.search(r"^modelgrid_writer_starts 1\.0$", metrics, re.M)
        for journal in ("ledger", "audit", "contents", "review-queue"):
            pending = re.search(
                rf'^modelgrid_journal_pending{{journal="{journal}"}} (\S+)$', metrics, re.M
            )
            assert pending is not None and float(pending[1]) >= 0
    assert not Path(f"/proc/{writers[0]}").exists()
