"""The durable audit log on both databases: commits, receipts, proofs and the crash journal."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from modelgrid.audit.checkpoint import open_checkpoint
from modelgrid.audit.keys import AuditKeys, PublicKey
from modelgrid.audit.merkle import verify_consistency
from modelgrid.audit.receipt import Receipt, receipt_problem, verify_receipt
from modelgrid.audit.store import AuditLog
from modelgrid.storage.database import Database
from modelgrid.storage.tables import audit_checkpoints, audit_leaves, audit_nodes, metadata

from .logs import ORIGIN, filled, sample, started

pytestmark = pytest.mark.anyio


@pytest.fixture
def keys() -> AuditKeys:
    return AuditKeys.generate()


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return tmp_path / "audit-journal"


async def count(db: Database, table: sa.Table) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def sizes(db: Database) -> list[int]:
    c = audit_checkpoints.c
    async with db.engine.connect() as conn:
        return [int(s) for s in (await conn.scalars(sa.select(c.tree_size).order_by(c.tree_size)))]


def dead_segment(journal: Path, lines: list[bytes], tail: bytes = b"") -> Path:
    """What a killed process leaves: its lines, perhaps one cut short, and no lock."""
    journal.mkdir(parents=True, exist_ok=True)
    path = journal / "audit-999999-0-deadbeef.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines) + tail)
    return path


async def test_appended_records_are_committed_with_a_checkpoint_per_flush(
    db: Database, journal: Path, keys: AuditKeys
) -> None:
    log = await started(db, journal, keys)
    try:
        log.append(sample(0))
        assert log.pending == 1
        assert await log.lookup("chatcmpl-000000") is None  # journaled, not yet committed
        assert await log.checkpoint() is None
        assert await log.flush()
        assert log.pending == 0
        receipt = await log.lookup("chatcmpl-000000")
        assert receipt is not None
        assert (receipt.leaf_index, receipt.tree_size, receipt.inclusion_proof) == (0, 1, ())
        assert receipt.record == sample(0) and receipt.leaf == sample(0).to_bytes()
        for i in range(1, 6):
            log.append(sample(i))
        assert await log.flush()
        assert await log.flush()  # nothing pending: no new checkpoint
        assert await sizes(db) == [1, 6]
        assert await count(db, audit_leaves) == 6
        assert await count(db, audit_nodes) == 4  # (1, 0), (1, 1), (1, 2), (2, 0)
        note = await log.checkpoint()
        assert note is not None and note == await log.checkpoint(6)
        assert open_checkpoint(note, log.public_key).size == 6
        assert await log.checkpoint(5) is None
        assert await log.lookup("chatcmpl-nope") is None
    finally:
        await log.close()
    assert os.listdir(journal) == []


async def test_every_record_has_a_receipt_that_verifies_with_only_the_public_key(
    db: Database, journal: Path, keys: AuditKeys
) -> None:
    records = await filled(db, journal, keys)
    log = AuditLog(db, journal, keys, origin=ORIGIN)  # queries only, as the CLI does
    # What a client has: the verifier key string from GET /v1/provenance/key, and JSON.
    public = PublicKey.from_verifier_key(log.public_key.to_json()["verifier_key"])
    for i, record in enumerate(records):
        receipt = await log.lookup(record.content_id)
        assert receipt is not None
        assert receipt.leaf_index == i and receipt.tree_size == len(records)
        shown = receipt.to_json()
        assert shown["record"]["content_id"] == record.content_id
        assert receipt_problem(shown, public) is None
        assert Receipt.from_json(shown) == receipt
    receipt = await log.lookup(records[9].content_id)
    assert receipt is not None
    other = await log.lookup(records[10].content_id)
    assert other is not None
    tampered = [
        Receipt(sample(99).to_bytes(), 9, 40, receipt.inclusion_proof, receipt.checkpoint),
        Receipt(receipt.leaf, 10, 40, receipt.inclusion_proof, receipt.checkpoint),
        Receipt(receipt.leaf, 9, 40, other.inclusion_proof, receipt.checkpoint),
        Receipt(receipt.leaf, 9, 41, receipt.inclusion_proof, receipt.checkpoint),
        Receipt(receipt.leaf, 9, 40, receipt.inclusion_proof, receipt.checkpoint + "x"),
    ]
    for bad in tampered:
        assert not verify_receipt(bad, public)
    assert not verify_receipt(receipt, AuditKeys.generate().public_key(ORIGIN))
    assert receipt_problem({"leaf": "!"}, public) is not None


async def test_consistency_proofs_join_every_pair_of_checkpoints(
    db: Database, journal: Path, keys: AuditKeys
) -> None:
    await filled(db, journal, keys)
    log = AuditLog(db, journal, keys, origin=ORIGIN)
    signed = {}
    for size in await sizes(db):
        note = await log.checkpoint(size)
        assert note is not None
        signed[size] = open_checkpoint(note, log.public_key).root
    for old, old_root in signed.items():
        for new, new_root in signed.items():
            if old <= new:
                proof = await log.consistency(old, new)
                assert verify_consistency(old, new, old_root, new_root, proof)
    with pytest.raises(ValueError):
        await log.consistency(8, 41)
    with pytest.raises(ValueError):
        await log.consistency(9, 8)


async def test_a_content_id_is_logged_once_and_the_first_committed_wins(
    db: Database, journal: Path, keys: AuditKeys
) -> None:
    log = await started(db, journal, keys)
    try:
        first = sample(1)
        log.append(first)
        log.append(sample(1, secret=b"t" * 32))  # same content id, in the same batch
        assert await log.flush()
        log.append(sample(1, secret=b"u" * 32))  # and in a later one
        log.append(sample(2))
        assert await log.flush()
        assert await count(db, audit_leaves) == 2
        found = await log.lookup(first.content_id)
        assert found is not None and found.record == first
        log.append(sample(1))
        assert await log.flush()
        assert await sizes(db) == [1, 2]  # a batch of duplicates signs nothing new
    finally:
        await log.close()


async def test_a_dead_process_journal_is_replayed_once(
    db: Database, journal: Path, keys: AuditKeys
) -> None:
    lost = [sample(i) for i in range(5)]
    path = dead_segment(journal, [r.to_bytes() for r in lost], tail=sample(5).to_bytes()[:30])
    (journal / "journal-1-0-cafe.jsonl").write_bytes(b"the ledger's, not ours\n")
    log = await started(db, journal, keys)
    try:
        assert log.replayed == 5 and log.pending == 0
        assert not path.exists()
        for record in lost:
            found = await log.lookup(record.content_id)
            assert found is not None and verify_receipt(found, log.public_key)
        assert await log.lookup(sample(5).content_id) is None  # the line cut short
    finally:
        await log.close()
    # Committed, then the process died before deleting its segment: nothing is added twice.
    dead_segment(journal, [r.to_bytes() for r in lost])
    again = await started(db, journal, keys)
    await again.close()
    assert again.replayed == 5
    assert await count(db, audit_leaves) == 5
    assert await sizes(db) == [5]
    assert sorted(os.listdir(journal)) == ["journal-1-0-cafe.jsonl"]


KILLED = """
import asyncio, os, signal, sys
from pathlib import Path
from modelgrid.audit.keys import AuditKeys
from modelgrid.audit.record import AuditRecord
from modelgrid.audit.store import AuditLog
from modelgrid.storage.database import Database

async def main() -> None:
    keys = AuditKeys.load(Path(sys.argv[3]))
    log = AuditLog(Database(sys.argv[1]), Path(sys.argv[2]), keys, flush_interval=3600)
    await log.start()
    for line in sys.stdin.buffer.read().splitlines():
        log.append(AuditRecord.from_bytes(line))
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


async def test_records_of_a_process_killed_with_sigkill_are_recovered(
    db: Database, journal: Path, tmp_path: Path
) -> None:
    keys = AuditKeys.load_or_create(tmp_path / "keys")
    killed = [sample(i) for i in range(4)]
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", KILLED, db.url, str(journal), str(tmp_path / "keys")],
        input=b"\n".join(r.to_bytes() for r in killed),
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert await count(db, audit_leaves) == 0
    log = AuditLog(db, journal, keys)
    await log.start()
    await log.close()
    assert log.replayed == 4
    for record in killed:
        found = await log.lookup(record.content_id)
        assert found is not None and found.record == record
    assert os.listdir(journal) == []


async def test_replicas_flushing_at_once_share_one_tree(
    db: Database, tmp_path: Path, keys: AuditKeys
) -> None:
    logs = [await started(db, tmp_path / f"replica-{n}", keys) for n in range(3)]
    try:
        for round_ in range(4):
            for n, log in enumerate(logs):
                for i in range(5):
                    log.append(sample(1000 * n + 10 * round_ + i))
            assert all(await asyncio.gather(*(log.flush() for log in logs)))
        assert await count(db, audit_leaves) == 60
        async with db.engine.connect() as conn:
            indices = await conn.scalars(sa.select(audit_leaves.c.leaf_index))
            assert sorted(indices) == list(range(60))
        assert (await sizes(db))[-1] == 60
        for n in range(3):
            found = await logs[0].lookup(sample(1000 * n).content_id)
            assert found is not None and verify_receipt(found, logs[0].public_key)
    finally:
        for log in logs:
            await log.close()


async def test_a_tree_that_disagrees_with_its_checkpoint_is_never_signed_on(
    db: Database, journal: Path, keys: AuditKeys, caplog: pytest.LogCaptureFixture
) -> None:
    log = await started(db, journal, keys)
    try:
        for i in range(4):
            log.append(sample(i))
        assert await log.flush()
        async with db.engine.begin() as conn:
            await conn.execute(audit_nodes.update().values(hash=b"\x00" * 32))
        log.append(sample(4))
        assert await log.flush() is False
        assert log.pending == 1
        assert await sizes(db) == [4]
        assert any(r.name == "modelgrid.audit" and r.exc_info for r in caplog.records)
    finally:
        await log.close()


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
            {str(u["name"]) for u in inspector.get_unique_constraints(name)},
            set(inspector.get_pk_constraint(name)["constrained_columns"]),
        )
        for name in inspector.get_table_names()
    }


async def test_the_migration_matches_the_tables_and_downgrades(db: Database) -> None:
    tables = (audit_leaves, audit_nodes, audit_checkpoints)
    async with db.engine.begin() as conn:
        schema = await conn.run_sync(_schema)
        for table in tables:
            assert schema[table.name] == (
                {c.name for c in table.columns},
                {str(u.name) for u in table.constraints if isinstance(u, sa.UniqueConstraint)},
                {c.name for c in table.primary_key.columns},
            )
        await conn.run_sync(_alembic, "downgrade", "0007")
        after = await conn.run_sync(_schema)
        assert not {t.name for t in tables} & set(after) and "ledger" in after
        await conn.run_sync(_alembic, "upgrade", "head")
        assert await conn.run_sync(_schema) == schema
    assert set(metadata.tables) <= set(schema)
