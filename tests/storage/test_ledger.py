"""The ledger on both databases: batched commits, the crash journal, and the queries."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from modelgrid.storage.database import Database
from modelgrid.storage.ledger import Ledger, LedgerEntry, Totals
from modelgrid.storage.tables import credit_grants, ledger, metadata

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC)
NEVER = 3600.0  # a flush interval that leaves flushing to the test


def entry(
    request_id: str, account: str = "org:acme", at: datetime = T0, **changes: object
) -> LedgerEntry:
    base = LedgerEntry(
        request_id=request_id,
        account=account,
        org_id=account.removeprefix("org:") if account.startswith("org:") else None,
        key_id="k" * 32,
        model="smollm2-135m-instruct",
        deployment="local-1",
        plan="pro",
        tokens_in=120,
        tokens_cached=40,
        tokens_out=30,
        list_price=9_000,
        charge=7_200,
        cost=1_100,
        outcome="ok",
        status=200,
        started_at=at - timedelta(seconds=2, microseconds=654321),
        created_at=at,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return tmp_path / "journal"


async def started(db: Database, journal: Path, flush_interval: float = NEVER) -> Ledger:
    result = Ledger(db, journal, flush_interval=flush_interval)
    await result.start()
    return result


async def rows(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int(
            (await conn.execute(sa.select(sa.func.count()).select_from(ledger))).scalar_one()
        )


def segments(journal: Path) -> list[Path]:
    return sorted(journal.glob("journal-*.jsonl"))


def journaled(path: Path) -> bytes:
    """A segment's lines as a replay reads them: up to its unused (zeroed) tail."""
    return path.read_bytes().split(b"\0", 1)[0]


def leftovers(journal: Path) -> list[str]:
    """Every file in the journal directory, hidden ones included."""
    return sorted(os.listdir(journal))


def dead_segment(journal: Path, entries: list[LedgerEntry], tail: bytes = b"") -> Path:
    """What a killed process leaves: its lines, perhaps a last one cut short, and no lock."""
    journal.mkdir(parents=True, exist_ok=True)
    path = journal / "journal-999999-0-deadbeef.jsonl"
    path.write_bytes(b"".join(e.to_json() + b"\n" for e in entries) + tail)
    return path


async def wait_for(condition: Callable[[], object], seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_entries_round_trip_through_json_exactly() -> None:
    plus_two = timezone(timedelta(hours=2))
    for e in (
        entry("a"),
        entry("b", account="key:k1", deployment=None, created_at=T0.astimezone(plus_two)),
        entry("c", started_at=datetime(2026, 1, 1), created_at=datetime(2026, 1, 1, 0, 0, 1)),
    ):
        decoded = LedgerEntry.from_json(e.to_json())
        assert decoded == e
        assert decoded.created_at.utcoffset() == e.created_at.utcoffset()


async def test_appended_entries_are_journaled_then_committed_and_read_back_equal(
    db: Database, journal: Path
) -> None:
    book = await started(db, journal)
    first = entry("req-1", list_price=5_000_000_000_000, charge=4_000_000_000_000)  # > 2**32
    second = entry(
        "req-2",
        account="key:solo",
        org_id=None,
        deployment=None,
        outcome="cancelled",
        status=499,
        created_at=(T0 + timedelta(seconds=1)).astimezone(timezone(timedelta(hours=-5))),
    )
    book.append(first)
    book.append(second)
    [segment] = segments(journal)
    assert journaled(segment) == first.to_json() + b"\n" + second.to_json() + b"\n"
    assert book.pending == 2
    assert await book.by_request("req-1") is None  # not committed yet

    assert await book.flush() is True
    assert book.pending == 0
    assert not segment.exists()  # committed, so its journal is gone
    assert await book.by_request("req-1") == first
    assert await book.by_request("req-2") == second
    assert await book.entries() == [second, first]  # newest first
    assert await book.by_request("nope") is None
    await book.close()
    assert leftovers(journal) == []


async def test_the_background_task_commits_without_being_asked(db: Database, journal: Path) -> None:
    book = await started(db, journal, flush_interval=0.01)
    try:
        for i in range(2500):  # more than one batch_max chunk
            book.append(entry(f"bg-{i}", at=T0 + timedelta(microseconds=i)))
        await wait_for(lambda: book.pending == 0)
        assert await rows(db) == 2500
        assert len(segments(journal)) == 1  # only the fresh, current segment
        assert journaled(segments(journal)[0]) == b""
    finally:
        await book.close()
    assert leftovers(journal) == []


async def test_totals_entries_grants_and_spending(db: Database, journal: Path) -> None:
    book = await started(db, journal)
    try:
        for i in range(5):
            book.append(entry(f"acme-{i}", at=T0 + timedelta(hours=i), charge=1_000_000 * (i + 1)))
        book.append(entry("other-0", account="org:other", at=T0, charge=99))
        await book.flush()

        since = T0 + timedelta(hours=2)
        assert await book.totals("org:acme", since) == Totals(
            requests=3,
            tokens_in=360,
            tokens_cached=120,
            tokens_out=90,
            list_price=27_000,
            charge=12_000_000,
            cost=3_300,
        )
        # The same instant in another zone selects the same entries.
        assert await book.totals("org:acme", since.astimezone(timezone(timedelta(hours=9)))) == (
            await book.totals("org:acme", since)
        )
        assert await book.totals("org:nobody", T0) == Totals(0, 0, 0, 0, 0, 0, 0)

        newest = await book.entries("org:acme", limit=2)
        assert [e.request_id for e in newest] == ["acme-4", "acme-3"]
        window = await book.entries("org:acme", since=T0 + timedelta(hours=1), until=since)
        assert [e.request_id for e in window] == ["acme-1"]  # until is exclusive
        assert {e.request_id for e in await book.entries()} == {
            *(f"acme-{i}" for i in range(5)),
            "other-0",
        }

        assert await book.granted("org:acme") == 0
        await book.grant("org:acme", 20_000_000, "starting")
        await book.grant("org:acme", 3_000_000_000_000, "topup", note="invoice 17")
        await book.grant("org:acme", -1_000_000, "adjustment")
        assert await book.granted("org:acme") == 3_000_019_000_000
        assert await book.granted("org:other") == 0
        async with db.engine.connect() as conn:
            kinds = (
                await conn.execute(sa.select(credit_grants.c.kind, credit_grants.c.note))
            ).all()
        assert sorted(tuple(k) for k in kinds) == [
            ("adjustment", ""),
            ("starting", ""),
            ("topup", "invoice 17"),
        ]
        assert await book.spent("org:acme") == 15_000_000
        assert await book.spent("org:other") == 99
        assert await book.spent("org:nobody") == 0
    finally:
        await book.close()


async def test_a_request_id_is_counted_once(db: Database, journal: Path) -> None:
    book = await started(db, journal)
    try:
        book.append(entry("twice"))
        book.append(entry("twice"))  # in one batch
        await book.flush()
        book.append(entry("twice", charge=1))  # in a later one: the first committed wins
        assert await book.flush() is True
        assert book.pending == 0
        assert await rows(db) == 1
        assert await book.spent("org:acme") == 7_200
    finally:
        await book.close()


async def test_a_dead_process_journal_is_replayed_once_and_deleted(
    db: Database, journal: Path
) -> None:
    lost = [entry(f"lost-{i}", at=T0 + timedelta(seconds=i)) for i in range(3)]
    path = dead_segment(journal, lost, tail=entry("cut").to_json()[:40])
    book = await started(db, journal)
    try:
        assert book.replayed == 3
        assert book.pending == 0
        assert not path.exists()
        assert await book.entries() == lost[::-1]
        assert await book.by_request("cut") is None
    finally:
        await book.close()
    again = await started(db, journal)
    await again.close()
    assert again.replayed == 0
    assert await rows(db) == 3
    assert leftovers(journal) == []


async def test_replaying_entries_already_committed_adds_nothing(
    db: Database, journal: Path
) -> None:
    book = await started(db, journal)
    done = [entry(f"done-{i}") for i in range(4)]
    for e in done:
        book.append(e)
    await book.close()
    # The process died after its commit but before deleting the segment.
    path = dead_segment(journal, done)
    second = await started(db, journal)
    await second.close()
    assert second.replayed == 4
    assert not path.exists()
    assert await rows(db) == 4


async def test_a_segment_locked_by_a_live_ledger_is_not_replayed(
    db: Database, journal: Path
) -> None:
    live = await started(db, journal)
    live.append(entry("live-1"))
    [segment] = segments(journal)
    other = await started(db, journal)  # same process, its own open file: flock still excludes
    try:
        assert other.replayed == 0
        assert segment.exists()
        assert await rows(db) == 0
        assert len(segments(journal)) == 2
        await live.flush()
        assert await rows(db) == 1
    finally:
        await other.close()
        await live.close()
    assert leftovers(journal) == []
    assert await rows(db) == 1


KILLED = """
import asyncio, os, signal, sys
from pathlib import Path
from modelgrid.storage.database import Database
from modelgrid.storage.ledger import Ledger, LedgerEntry

async def main() -> None:
    book = Ledger(Database(sys.argv[1]), Path(sys.argv[2]), flush_interval=3600)
    await book.start()
    for line in sys.stdin.buffer.read().splitlines():
        book.append(LedgerEntry.from_json(line))
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


async def test_entries_of_a_process_killed_with_sigkill_are_recovered(
    db: Database, journal: Path
) -> None:
    killed = [entry(f"killed-{i}", at=T0 + timedelta(seconds=i)) for i in range(5)]
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", KILLED, db.url, str(journal)],
        input=b"\n".join(e.to_json() for e in killed),
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    [segment] = segments(journal)
    assert f"journal-{os.getpid()}-" not in segment.name
    assert await rows(db) == 0
    book = await started(db, journal)
    await book.close()
    assert book.replayed == 5
    assert await book.entries() == killed[::-1]
    assert leftovers(journal) == []


async def test_a_database_failure_keeps_entries_pending_and_journaled(
    db: Database, journal: Path, caplog: pytest.LogCaptureFixture
) -> None:
    book = await started(db, journal)
    try:
        book.append(entry("held-1"))
        async with db.engine.begin() as conn:
            await conn.execute(sa.text("ALTER TABLE ledger RENAME TO ledger_away"))
        assert await book.flush() is False
        book.append(entry("held-2"))
        assert await book.flush() is False
        assert book.pending == 2
        lines = b"".join(journaled(p) for p in segments(journal))
        assert lines.count(b"\n") == 2 and b"held-1" in lines and b"held-2" in lines
        assert any(r.name == "modelgrid.ledger" and r.exc_info for r in caplog.records)

        async with db.engine.begin() as conn:
            await conn.execute(sa.text("ALTER TABLE ledger_away RENAME TO ledger"))
        assert await book.flush() is True
        assert book.pending == 0
        assert [e.request_id for e in await book.entries()] == ["held-2", "held-1"]
        assert [journaled(p) for p in segments(journal)] == [b""]
    finally:
        await book.close()
    assert leftovers(journal) == []


async def test_a_journal_outlives_a_database_that_is_down_at_start(
    db: Database, journal: Path, tmp_path: Path
) -> None:
    url = make_url(db.url)
    if db.is_sqlite:
        down = f"sqlite:///{tmp_path}"  # a directory: the file cannot be opened
    else:
        down = url.set(port=1).render_as_string(hide_password=False)
    dead_segment(journal, [entry("early-1"), entry("early-2")])
    unreachable = Database(down)
    book = await started(unreachable, journal)
    assert book.replayed == 2 and book.pending == 2  # recovered, not yet committed
    book.append(entry("early-3"))
    await book.close()
    await unreachable.close()
    assert len(segments(journal)) == 2  # the adopted segment and the one written since

    recovered = await started(db, journal)
    await recovered.close()
    assert recovered.replayed == 3
    assert {e.request_id for e in await recovered.entries()} == {"early-1", "early-2", "early-3"}
    assert leftovers(journal) == []


async def test_close_commits_what_is_pending_and_leaves_no_journal(
    db: Database, journal: Path
) -> None:
    book = await started(db, journal)
    book.append(entry("last-words"))
    await book.close()
    assert leftovers(journal) == []
    assert await book.by_request("last-words") == entry("last-words")
    with pytest.raises(RuntimeError):
        book.append(entry("too-late"))


def _alembic(connection: sa.Connection, action: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", "modelgrid:migrations")
    config.attributes["connection"] = connection
    getattr(command, action)(config, revision)


def _schema(connection: sa.Connection) -> dict[str, tuple[set[str], set[str], set[str]]]:
    inspector = sa.inspect(connection)
    return {
        name: (
            {c["name"] for c in inspector.get_columns(name)},
            # PostgreSQL reports a unique constraint's index as an index too.
            {
                str(i["name"])
                for i in inspector.get_indexes(name)
                if not i.get("duplicates_constraint")
            },
            {str(u["name"]) for u in inspector.get_unique_constraints(name)},
        )
        for name in inspector.get_table_names()
    }


async def migration_round_trip(
    db: Database, tables: tuple[sa.Table, ...], down_to: str, kept: str
) -> None:
    """The migrated schema holds ``tables`` as declared; downgrading to ``down_to`` drops
    them and keeps ``kept``; upgrading again gives the same schema back."""
    async with db.engine.begin() as conn:
        schema = await conn.run_sync(_schema)
        for table in tables:
            assert schema[table.name][:2] == (
                {c.name for c in table.columns},
                {str(i.name) for i in table.indexes},
            )
        await conn.run_sync(_alembic, "downgrade", down_to)
        after = await conn.run_sync(_schema)
        assert not {t.name for t in tables} & set(after) and kept in after
        await conn.run_sync(_alembic, "upgrade", "head")
        assert await conn.run_sync(_schema) == schema


async def test_the_migration_matches_the_tables_and_downgrades(db: Database) -> None:
    async with db.engine.begin() as conn:
        schema = await conn.run_sync(_schema)
        for table in (ledger, credit_grants):
            assert schema[table.name] == (
                {c.name for c in table.columns},
                {str(i.name) for i in table.indexes},
                {str(u.name) for u in table.constraints if isinstance(u, sa.UniqueConstraint)},
            )
        await conn.run_sync(_alembic, "downgrade", "0003")
        after = await conn.run_sync(_schema)
        assert "ledger" not in after and "credit_grants" not in after and "api_keys" in after
        await conn.run_sync(_alembic, "upgrade", "head")
        assert await conn.run_sync(_schema) == schema
    assert set(metadata.tables) <= set(schema)
