"""The journaled stores every request writes to (the ledger, the audit log, the stored
conversations), built alike in the server and in its writer process (writer.py), so that a
batch the writer commits is committed exactly as the server would have."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from .audit.keys import AuditKeys
from .audit.store import AuditLog
from .errors import Overloaded
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
# Told to a request refused for a full backlog: a few batches' time.
RETRY_SECONDS = 5


@dataclass(frozen=True)
class Journals:
    ledger: Ledger
    audit: AuditLog
    contents: ContentStore
    wait_seconds: float = 10.0  # how long a request waits for room before a 503

    def by_name(self) -> dict[str, Journaled[Any]]:
        """Each store under its journal's name, the name batches are handed over with."""
        return {"ledger": self.ledger, "audit": self.audit, "contents": self.contents}

    @property
    def full(self) -> bool:
        """A store's backlog is at its bound: the database is behind the requests."""
        return self.ledger.full or self.audit.full or self.contents.full

    async def room(self) -> None:
        """Return once every store's backlog is under its bound; Overloaded (a 503) when
        that takes longer than ``wait_seconds``. New requests wait here, not the ones being
        served: what a request has done is always recorded, and what is held back is the
        work that would add to the backlog."""
        try:
            async with asyncio.timeout(self.wait_seconds):
                while self.full:
                    for store in (self.ledger, self.audit, self.contents):
                        await store.room()
        except TimeoutError:
            raise Overloaded(
                "The server is overloaded: its database is behind the requests. "
                "Retry in a few seconds.",
                code="server_overloaded",
                headers={"Retry-After": str(RETRY_SECONDS)},
            ) from None


def build_journals(
    settings: Settings, db: Database, audit_keys: AuditKeys, writer: WriterProcess | None = None
) -> Journals:
    """With ``writer``, each store hands its batches to it rather than committing them."""
    bound = settings.journal_backlog_bytes

    def forward(name: str) -> Forward | None:
        if writer is None:
            return None

        async def hand_over(lines: memoryview) -> None:
            await writer.commit(name, lines)

        return hand_over

    journal, audit_journal = settings.data_dir / "journal", settings.data_dir / "audit-journal"
    audit = AuditLog(
        db,
        audit_journal,
        audit_keys,
        FLUSH_SECONDS,
        settings.audit_origin,
        forward("audit"),
        max_backlog=bound,
    )
    ledger = Ledger(
        db, journal, flush_interval=FLUSH_SECONDS, forward=forward("ledger"), max_backlog=bound
    )
    # The kept responses' audit leaves are committed with them (storage/contents.py).
    contents = ContentStore(
        db,
        journal,
        flush_interval=FLUSH_SECONDS,
        forward=forward("contents"),
        audit=audit,
        max_backlog=bound,
    )
    return Journals(ledger, audit, contents, settings.journal_backlog_seconds)
