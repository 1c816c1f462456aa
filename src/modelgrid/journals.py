"""The journaled stores every request writes to (the ledger, the audit log, the stored
conversations), built alike in the server and in its writer process (writer.py), so that a
batch the writer commits is committed exactly as the server would have."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .audit.keys import AuditKeys
from .audit.store import AuditLog
from .settings import Settings
from .storage.contents import ContentStore
from .storage.database import Database
from .storage.journal import Forward
from .storage.journaled import Journaled
from .storage.ledger import Ledger
from .writer import WriterProcess

# Entries are durable once journaled; the database takes them once a second, in batches large
# enough that a commit's fixed cost (about 2.5 ms through aiosqlite) is shared by hundreds of
# requests rather than a few dozen.
FLUSH_SECONDS = 1.0


@dataclass(frozen=True)
class Journals:
    ledger: Ledger
    audit: AuditLog
    contents: ContentStore

    def by_name(self) -> dict[str, Journaled[Any]]:
        """Each store under its journal's name, the name batches are handed over with."""
        return {"ledger": self.ledger, "audit": self.audit, "contents": self.contents}


def build_journals(
    settings: Settings, db: Database, audit_keys: AuditKeys, writer: WriterProcess | None = None
) -> Journals:
    """With ``writer``, each store hands its batches to it rather than committing them."""

    def forward(name: str) -> Forward | None:
        if writer is None:
            return None

        async def hand_over(lines: bytearray) -> None:
            await writer.commit(name, lines)

        return hand_over

    journal, audit_journal = settings.data_dir / "journal", settings.data_dir / "audit-journal"
    audit = AuditLog(
        db, audit_journal, audit_keys, FLUSH_SECONDS, settings.audit_origin, forward("audit")
    )
    return Journals(
        Ledger(db, journal, flush_interval=FLUSH_SECONDS, forward=forward("ledger")),
        audit,
        # The kept responses' audit leaves are committed with them (storage/contents.py).
        ContentStore(
            db, journal, flush_interval=FLUSH_SECONDS, forward=forward("contents"), audit=audit
        ),
    )
