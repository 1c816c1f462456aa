"""Records and logs the audit tests share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from modelgrid.audit.keys import AuditKeys
from modelgrid.audit.record import AuditRecord, build_record
from modelgrid.audit.store import AuditLog
from modelgrid.storage.database import Database

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ORIGIN = "audit.example.com/log"
NEVER = 3600.0  # a flush interval that leaves flushing to the test
BATCHES = (7, 1, 12, 4, 16)  # five checkpoints, of 7, 8, 20, 24 and 40 leaves


def sample(i: int, secret: bytes = b"s" * 32) -> AuditRecord:
    content_id = f"chatcmpl-{i:06d}"
    return build_record(
        secret,
        content_id=content_id,
        time=T0 + timedelta(seconds=i),
        org_id=f"org_{i % 3}",
        key_id=f"key_{i % 5}",
        model="smollm2-135m-instruct",
        prompt=f"prompt {i}",
        response=f"response {i}",
        layers=["review"] if i % 2 else [],
        review=[{"stage": "output", "action": "flag" if i % 7 == 0 else "allow", "risks": []}],
        aigc={"Label": "1", "ContentProducer": "X" * 27, "ProduceID": content_id},
    )


async def started(db: Database, journal: Path, keys: AuditKeys) -> AuditLog:
    log = AuditLog(db, journal, keys, flush_interval=NEVER, origin=ORIGIN)
    await log.start()
    return log


async def filled(
    db: Database, journal: Path, keys: AuditKeys, batches: tuple[int, ...] = BATCHES
) -> list[AuditRecord]:
    """A closed log of sum(batches) records, committed a batch (and a checkpoint) at a time."""
    log = await started(db, journal, keys)
    records: list[AuditRecord] = []
    for size in batches:
        batch = [sample(len(records) + i) for i in range(size)]
        for record in batch:
            log.append(record)
        assert await log.flush()
        records += batch
    await log.close()
    return records
