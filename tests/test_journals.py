"""The journals' bounded backlog as requests meet it: new requests wait for the database to
catch up, and are refused with a 503 when it does not; in-process, and through a server whose
database stops taking its ledger."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import openai
import pytest

from modelgrid.audit.keys import AuditKeys
from modelgrid.errors import Overloaded
from modelgrid.journals import RETRY_SECONDS, Journals, build_journals
from modelgrid.settings import Settings
from modelgrid.storage.database import Database

from .services import run_server
from .storage.test_ledger import entry

MODEL = "smollm2-135m-instruct"


@pytest.fixture
async def journals(tmp_path: Path) -> AsyncIterator[Journals]:
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    await db.migrate()
    settings = Settings(data_dir=tmp_path, journal_backlog_bytes=1, journal_backlog_seconds=0.05)
    built = build_journals(settings, db, AuditKeys.load_or_create(tmp_path))
    for store in built.by_name().values():
        await store.start()
    yield built
    for store in built.by_name().values():
        await store.close()
    await db.close()


@pytest.mark.anyio
async def test_a_full_backlog_holds_requests_until_a_commit_then_refuses_them(
    journals: Journals,
) -> None:
    assert not journals.full
    await journals.room()  # nothing held: at once
    journals.ledger.append(entry("r-1"))
    assert journals.full
    with pytest.raises(Overloaded) as refused:
        await journals.room()
    assert refused.value.status == 503
    assert refused.value.code == "server_overloaded"
    assert refused.value.headers == {"Retry-After": str(RETRY_SECONDS)}
    waiting = asyncio.ensure_future(journals.room())
    assert await journals.ledger.flush()
    await asyncio.wait_for(waiting, 1)  # the commit made room
    assert not journals.full


CONFIG = f"""
journal_backlog_bytes = 1
journal_backlog_seconds = 3

[models.{MODEL}]
n_ctx = 512
"""


def test_a_server_whose_database_falls_behind_holds_then_refuses_new_requests(
    tmp_path: Path,
) -> None:
    with run_server(tmp_path, CONFIG) as server:
        client = openai.OpenAI(
            base_url=server.base_url, api_key=server.new_key("backlog-org"), max_retries=0
        )

        def ask() -> str:
            answer = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2
            )
            return answer.id

        first = ask()
        # Its ledger entry fills the one-byte backlog: the next request waits for the
        # writer's commit of it, then goes through.
        second = ask()
        assert first != second
        with sqlite3.connect(server.data_dir / "modelgrid.db") as db:
            # The second waited for the first's entry, committed before it was let in.
            assert db.execute("SELECT COUNT(*) FROM ledger").fetchone()[0] >= 1
            db.execute("ALTER TABLE ledger RENAME TO ledger_away")  # the commits fail now
        ask_until_refused(ask)
        metrics = httpx.get(f"{server.url}/metrics").text
        held = [
            line
            for line in metrics.splitlines()
            if line.startswith('modelgrid_journal_backlog_bytes{journal="ledger"}')
        ]
        assert held and float(held[0].split()[-1]) > 0
        with sqlite3.connect(server.data_dir / "modelgrid.db") as db:
            db.execute("ALTER TABLE ledger_away RENAME TO ledger")
        ask()  # the database back: the backlog is committed and requests go through


def ask_until_refused(ask: Callable[[], str]) -> None:
    """The request after the last committed entry may still find room: a few at most."""
    for _ in range(3):
        try:
            ask()
        except openai.APIStatusError as e:
            assert e.status_code == 503
            assert e.response.headers["retry-after"] == str(RETRY_SECONDS)
            error = e.response.json()["error"]
            assert error["code"] == "server_overloaded"
            assert error["type"] == "server_error"
            assert "database is behind" in error["message"]
            return
    pytest.fail("no request was refused while the database took no ledger entries")
