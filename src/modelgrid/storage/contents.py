"""Stored conversations: per response, what was asked, what was served and its AIGC label.

Written as the ledger is (storage/journal.py): the request path only calls ``append``, a
line copied into this process's journal segment, which survives the process being killed; a
background task commits pending responses in one transaction every ``flush_interval`` seconds,
and the next ``start()`` in the same ``journal_dir`` replays what dead processes left. Inserts
ignore a content id already stored, so a replay never stores a response twice: the first one
committed wins.

The same transaction indexes each response's choices for provenance lookups (provenance/), so
a stored response is findable from the moment it is stored, and a replay indexes what it
stores.

It also appends the response's audit leaf, when the response carries its review's verdicts
(``review``): the leaf is made from what is stored here (the prompt's and the answers' HMACs,
the pseudonyms), so the request path journals one line for both rather than two, and the
hashing is done where the batch is committed (the writer process, writer.py) rather than on
the event loop. A response whose text is not kept has its leaf journaled by the audit log
itself (compliance.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..audit.record import AuditRecord, ReviewVerdict, build_record, prompt_text
from ..audit.store import AuditLog
from ..provenance.index import INDEX_COLUMNS, INDEX_KEY, content_ref, index_array
from ..provenance.minhash import MinHasher
from .database import Database
from .journal import Forward, Journal
from .journaled import Journaled
from .tables import provenance_index, stored_contents

log = logging.getLogger("modelgrid.contents")

_COLUMNS = (
    "content_id",
    "created_at",
    "org_id",
    "key_id",
    "model",
    "request",
    "choices",
    "aigc",
    "label",
    "ref",
)
_PRUNE_CHUNK = 1000  # responses per delete: retention never holds a long lock


@dataclass(frozen=True, slots=True)
class StoredContent:
    content_id: str  # the completion's id: chatcmpl-… or cmpl-…
    created_at: datetime
    org_id: str | None
    key_id: str | None
    model: str
    messages: list[dict[str, Any]] | None  # chat: the request's messages as sent
    prompt: Any  # completions: the prompt as sent (text, texts or token ids); None for chat
    choices: tuple[str, ...]  # each choice's text as served, its explicit label included
    aigc: dict[str, str]  # the implicit label's fields (GB 45438 Appendix E)
    label: str = ""  # the explicit label as served, if any: left out of the provenance index
    # The review's verdicts when this response's audit leaf is made from it; None when the
    # audit log journaled its leaf itself (and in lines written before leaves were made here).
    review: tuple[ReviewVerdict, ...] | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, raw: bytes) -> StoredContent:
        data = orjson.loads(raw)
        data["created_at"] = datetime.fromisoformat(data["created_at"])
        data["choices"] = tuple(data["choices"])
        if data.get("review") is not None:
            data["review"] = tuple(data["review"])
        return cls(**data)

    def leaf(self, secret: bytes) -> AuditRecord:
        """The audit leaf of this response, as the audit log would have journaled it: the
        prompt (a chat's messages as canonical JSON) and the answers as served, digested."""
        prompt = self.prompt if self.messages is None else prompt_text(self.messages)
        return build_record(
            secret,
            content_id=self.content_id,
            time=self.created_at,
            org_id=self.org_id,
            key_id=self.key_id,
            model=self.model,
            prompt=prompt if isinstance(prompt, str) else orjson.dumps(prompt).decode(),
            response="\n\n".join(self.choices),
            review=self.review or (),
            aigc=self.aigc,
        )


class ContentStore(Journaled[StoredContent]):
    def __init__(
        self,
        db: Database,
        journal_dir: Path,
        flush_interval: float = 1.0,
        hasher: MinHasher | None = None,
        forward: Forward | None = None,  # journal.py: commit in another process
        max_backlog: int = 0,  # journal.py: bytes held uncommitted before full
        audit: AuditLog | None = None,
    ) -> None:
        """``audit``: where the leaves of responses that carry their review go; a store
        without one refuses such a batch (it stays journaled) rather than lose the leaves."""
        self._db = db
        self.hasher = hasher or MinHasher()
        self.audit = audit
        self._journal: Journal[StoredContent] = Journal(
            journal_dir,
            encode=StoredContent.to_json,
            decode=StoredContent.from_json,
            commit=self._insert,
            describe=lambda content: f"content {content.content_id}",
            log=log,
            name="contents",
            flush_interval=flush_interval,
            forward=forward,
            max_backlog=max_backlog,
            prefix="contents",  # beside the ledger's segments, never taken for them
        )

    @property
    def db(self) -> Database:
        return self._db

    async def get(self, content_id: str) -> StoredContent | None:
        """This process's pending responses are flushed first, so they are found too."""
        await self.flush()
        query = sa.select(*(stored_contents.c[n] for n in _COLUMNS)).where(
            stored_contents.c.content_id == content_id
        )
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else content_of(row)

    async def prune(self, older_than: datetime) -> int:
        """Drop responses stored before ``older_than``, with their index; how many went."""
        c, removed = stored_contents.c, 0
        while True:
            async with self._db.begin_write() as conn:
                old = (
                    await conn.execute(
                        sa.select(c.content_id, c.choices, c.label)
                        .where(c.created_at < as_utc(older_than))
                        .limit(_PRUNE_CHUNK)
                    )
                ).all()
                if not old:
                    return removed
                # The index rows are found again from the choices: no second index to keep.
                responses = [(r.content_id, orjson.loads(r.choices), r.label) for r in old]
                rows = await asyncio.to_thread(index_array, self.hasher, responses)
                await self._db.delete_array(conn, provenance_index, INDEX_COLUMNS, rows)
                ids = [r.content_id for r in old]
                await conn.execute(stored_contents.delete().where(c.content_id.in_(ids)))
            removed += len(old)

    async def _insert(self, batch: list[StoredContent]) -> None:
        audited = [content for content in batch if content.review is not None]
        if audited and self.audit is None:
            raise RuntimeError("responses with audit leaves to make, and no audit log to take them")
        # MinHash and the leaves' HMACs are CPU work: in a thread, so a large batch does not
        # stall the event loop that streams responses.
        rows, index, leaves = await asyncio.to_thread(self._rows, batch, audited)
        async with self._db.begin_write() as conn:
            if leaves and self.audit is not None:
                # First: the audit log takes its lock before anything in the transaction.
                await self.audit.commit_in(conn, leaves)
            await self._insert_rows(conn, rows, index)

    async def _insert_rows(
        self, conn: AsyncConnection, rows: list[tuple[Any, ...]], index: npt.NDArray[np.int64]
    ) -> None:
        """``index``: a row per line, band key and ref (``index_array``'s)."""
        await self._db.insert_new(conn, stored_contents, _COLUMNS, rows, unique="content_id")
        await self._db.insert_array(conn, provenance_index, INDEX_COLUMNS, index, unique=INDEX_KEY)

    def _rows(
        self, batch: list[StoredContent], audited: list[StoredContent]
    ) -> tuple[list[tuple[Any, ...]], npt.NDArray[np.int64], list[AuditRecord]]:
        """In a thread: the rows, their provenance index rows, and ``audited``'s leaves."""
        responses = [(c.content_id, c.choices, c.label) for c in batch]
        # ``_insert`` refused a batch with leaves to make and no audit log before this.
        leaves = [] if self.audit is None else _leaves(audited, self.audit.keys.hmac_secret)
        return [_row(content) for content in batch], index_array(self.hasher, responses), leaves


def _leaves(contents: list[StoredContent], secret: bytes) -> list[AuditRecord]:
    """Their audit leaves; one that cannot be made is logged and left out, rather than hold
    up the batch (and every response behind it) forever."""
    leaves = []
    for content in contents:
        try:
            leaves.append(content.leaf(secret))
        except (ValueError, TypeError, KeyError):
            log.exception("audit: no leaf for content %s", content.content_id)
    return leaves


def as_utc(value: datetime) -> datetime:
    """SQLite keeps a datetime's wall-clock digits and drops the offset: everything crosses
    into the database in UTC; naive values are taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _request(content: StoredContent) -> bytes:
    if content.messages is not None:
        return orjson.dumps({"messages": content.messages})
    return orjson.dumps({"prompt": content.prompt})


def _row(content: StoredContent) -> tuple[Any, ...]:
    return (
        content.content_id,
        as_utc(content.created_at),
        content.org_id,
        content.key_id,
        content.model,
        _request(content).decode(),
        orjson.dumps(content.choices).decode(),
        orjson.dumps(content.aigc).decode(),
        content.label,
        content_ref(content.content_id),
    )


def content_of(row: sa.Row[Any]) -> StoredContent:
    """A stored_contents row (its columns in ``_COLUMNS``' order, or more) as a StoredContent."""
    request = orjson.loads(row.request)
    return StoredContent(
        content_id=row.content_id,
        created_at=as_utc(row.created_at),
        org_id=row.org_id,
        key_id=row.key_id,
        model=row.model,
        messages=request.get("messages"),
        prompt=request.get("prompt"),
        choices=tuple(orjson.loads(row.choices)),
        aigc=orjson.loads(row.aigc),
        label=row.label,
    )
