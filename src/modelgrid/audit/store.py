"""The durable audit log: leaves, complete-subtree hashes and signed checkpoints in the database.

The request path only calls ``append``, which journals the record (storage/journal.py, as the
ledger does: one ``os.write``, which survives the process being killed) and keeps it pending.
Once a second a flush commits everything pending in one transaction, one writer at a time
across replicas (a PostgreSQL advisory lock; SQLite has one writer): it reads the newest
checkpoint and the frontier of the tree it signed, checks that they agree, gives the new
records the next indices in order, stores them with the subtrees they complete, and signs and
stores a checkpoint of the new root. A record whose content id is already stored is dropped, so
replaying a dead process's journal never adds a leaf twice; the first one committed wins.

Reads are O(log n): the frontier, and every proof, come from complete subtrees stored once as
they complete (merkle.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..storage.database import Database
from ..storage.journal import Forward, Journal
from ..storage.journaled import Journaled
from ..storage.tables import audit_checkpoints, audit_leaves, audit_nodes
from .checkpoint import Checkpoint, sign_checkpoint
from .keys import AuditKeys, PublicKey, check_name
from .merkle import (
    EMPTY_ROOT,
    CompactRange,
    Node,
    NodeHash,
    consistency_nodes,
    consistency_proof,
    inclusion_nodes,
    inclusion_proof,
    leaf_hash,
    subtrees,
)
from .receipt import Receipt
from .record import AuditRecord

log = logging.getLogger("modelgrid.audit")

DEFAULT_ORIGIN = "modelgrid/audit"
# Any number constant to all replicas (the migrations' is 7_245_118_003).
_AUDIT_LOCK = 7_245_118_008
_CHUNK = 500  # rows per statement: under SQLite's bound-parameter limit with room to spare
_HASHED_A_TURN = 128  # records encoded and hashed between two turns of the event loop


class AuditCorrupt(RuntimeError):
    """The stored tree disagrees with itself; `modelgrid audit verify` says where."""


class AuditLog(Journaled[AuditRecord]):
    def __init__(
        self,
        db: Database,
        journal_dir: Path,
        keys: AuditKeys,
        flush_interval: float = 1.0,
        origin: str = DEFAULT_ORIGIN,
        forward: Forward | None = None,  # journal.py: commit in another process
        max_backlog: int = 0,  # journal.py: bytes held uncommitted before full
    ) -> None:
        self._db = db
        self._keys = keys
        self._origin = check_name(origin)
        self._journal: Journal[AuditRecord] = Journal(
            journal_dir,
            encode=AuditRecord.to_bytes,
            decode=AuditRecord.from_bytes,
            commit=self._commit,
            describe=lambda record: f"content {record.content_id}",
            log=log,
            name="audit",
            flush_interval=flush_interval,
            forward=forward,
            max_backlog=max_backlog,
            prefix="audit",
        )

    @property
    def db(self) -> Database:
        return self._db

    @property
    def keys(self) -> AuditKeys:
        return self._keys

    @property
    def origin(self) -> str:
        return self._origin

    @property
    def public_key(self) -> PublicKey:
        return self._keys.public_key(self._origin)

    # Reads see committed records only: flush() first to include this process's pending ones.

    async def lookup(self, content_id: str) -> Receipt | None:
        """The record of ``content_id`` with its proof against the newest checkpoint; None
        when no committed record has that id."""
        c = audit_leaves.c
        async with self._db.engine.connect() as conn:
            query = sa.select(c.leaf_index, c.record).where(c.content_id == content_id)
            leaf = (await conn.execute(query)).first()
            if leaf is None:
                return None
            newest = await _newest(conn)
            # A checkpoint commits with its leaves, so it covers every leaf read before it.
            if newest is None or leaf.leaf_index >= newest.tree_size:
                return None
            index, size = int(leaf.leaf_index), newest.tree_size
            found = await read_nodes(conn, inclusion_nodes(index, size))
        proof = inclusion_proof(index, size, _reader(found))
        return Receipt(bytes(leaf.record), index, size, tuple(proof), newest.note)

    async def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        """The RFC 9162 proof that the tree of ``new_size`` leaves extends that of
        ``old_size``; ValueError unless 0 <= old_size <= new_size <= the newest checkpoint's."""
        async with self._db.engine.connect() as conn:
            newest = await _newest(conn)
            size = 0 if newest is None else newest.tree_size
            if not 0 <= old_size <= new_size <= size:
                raise ValueError(f"no consistency proof from {old_size} to {new_size} leaves")
            found = await read_nodes(conn, consistency_nodes(old_size, new_size))
        return consistency_proof(old_size, new_size, _reader(found))

    async def checkpoint(self, tree_size: int | None = None) -> str | None:
        """The signed note of the checkpoint of ``tree_size`` leaves, or of the newest."""
        c = audit_checkpoints.c
        async with self._db.engine.connect() as conn:
            if tree_size is None:
                newest = await _newest(conn)
                return None if newest is None else newest.note
            query = sa.select(c.note).where(c.tree_size == tree_size)
            found = (await conn.execute(query)).scalar_one_or_none()
        return None if found is None else str(found)

    async def _commit(self, batch: list[AuditRecord]) -> None:
        async with self._db.begin_write() as conn:
            await self.commit_in(conn, batch)

    async def commit_in(self, conn: AsyncConnection, batch: list[AuditRecord]) -> None:
        """Append ``batch`` (records already stored are left out) and sign the new tree, in
        ``conn``'s write transaction, which must not have read anything yet: the stored
        conversations commit their responses' leaves with them this way (contents.py)."""
        await self._lock_writers(conn)
        newest = await _newest(conn)
        size, signed = (0, EMPTY_ROOT) if newest is None else (newest.tree_size, newest.root)
        found = await read_nodes(conn, subtrees(0, size))
        frontier = CompactRange.frontier(size, _reader(found))
        if frontier.root != signed:
            # Never sign on top of a tree that is not the one signed before: it would make
            # the tampering look like a fork of our own.
            raise AuditCorrupt(f"the stored tree does not match checkpoint {size}")
        fresh = await _unseen(conn, batch)
        if not fresh:
            return
        leaves: list[tuple[int, str, bytes, bytes]] = []
        nodes: list[tuple[int, int, bytes]] = []
        grown = frontier
        # A slice at a time, yielding between: a second's records hashed in one go held
        # the event loop (and every request in flight) for about 10 ms.
        for start in range(0, len(fresh), _HASHED_A_TURN):
            if start:
                await asyncio.sleep(0)
            data = [record.to_bytes() for record in fresh[start : start + _HASHED_A_TURN]]
            hashes = [leaf_hash(d) for d in data]
            grown, completed = grown.extend(hashes)
            leaves += [
                (grown.end - len(data) + i, r.content_id, d, h)
                for i, (r, d, h) in enumerate(
                    zip(fresh[start : start + _HASHED_A_TURN], data, hashes, strict=True)
                )
            ]
            nodes += [(n[0], n[1], h) for n, h in completed]
        # Straight to the driver (Database.insert_new): SQLAlchemy's per-row parameter
        # processing was most of a flush's cost. No row can clash: the lock is held.
        for table, columns, rows in (
            (audit_leaves, _LEAF_COLUMNS, leaves),
            (audit_nodes, _NODE_COLUMNS, nodes),
        ):
            for start in range(0, len(rows), _CHUNK):
                await self._db.insert_new(conn, table, columns, rows[start : start + _CHUNK])
        note = sign_checkpoint(Checkpoint(self._origin, grown.end, grown.root), self._keys)
        await conn.execute(
            audit_checkpoints.insert().values(
                tree_size=grown.end, root=grown.root, created_at=datetime.now(UTC), note=note
            )
        )

    async def _lock_writers(self, conn: AsyncConnection) -> None:
        if not self._db.is_sqlite:
            await conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_AUDIT_LOCK})"))
            return
        # pysqlite begins a transaction at its first write, and a SQLite transaction that has
        # read cannot wait for another writer to finish; a write that changes nothing, first,
        # takes SQLite's one write lock (waiting busy_timeout for it) before anything is read.
        c = audit_checkpoints.c
        await conn.execute(audit_checkpoints.update().where(sa.false()).values(note=c.note))


_LEAF_COLUMNS = ("leaf_index", "content_id", "record", "leaf_hash")
_NODE_COLUMNS = ("level", "node_index", "hash")


class _Signed(NamedTuple):
    tree_size: int
    root: bytes
    note: str


async def _newest(conn: AsyncConnection) -> _Signed | None:
    c = audit_checkpoints.c
    query = sa.select(c.tree_size, c.root, c.note).order_by(c.tree_size.desc()).limit(1)
    row = (await conn.execute(query)).first()
    return None if row is None else _Signed(int(row.tree_size), bytes(row.root), str(row.note))


async def _unseen(conn: AsyncConnection, batch: list[AuditRecord]) -> list[AuditRecord]:
    """The records of ``batch`` whose content id is neither stored nor earlier in the batch."""
    first: dict[str, AuditRecord] = {}
    for record in batch:
        first.setdefault(record.content_id, record)
    ids = list(first)
    c = audit_leaves.c
    for start in range(0, len(ids), _CHUNK):
        query = sa.select(c.content_id).where(c.content_id.in_(ids[start : start + _CHUNK]))
        for (stored,) in await conn.execute(query):
            del first[stored]
    return list(first.values())


async def read_nodes(conn: AsyncConnection, wanted: Iterable[Node]) -> dict[Node, bytes]:
    """The stored hashes of the complete subtrees ``wanted``: leaves from audit_leaves, the rest
    from audit_nodes. Missing ones are missing from the answer."""
    found: dict[Node, bytes] = {}
    nodes = sorted(set(wanted))
    for start in range(0, len(nodes), _CHUNK):
        for level, index, value in await conn.execute(_select_nodes(nodes[start : start + _CHUNK])):
            found[int(level), int(index)] = bytes(value)
    return found


def _select_nodes(nodes: list[Node]) -> sa.Executable:
    """One statement, so a proof costs one round trip. Per level an IN on the primary key: a
    row-value IN would be simpler, but SQLite answers it by scanning the whole table."""
    levels: dict[int, list[int]] = {}
    for level, index in nodes:
        levels.setdefault(level, []).append(index)
    leaf, n = audit_leaves.c, audit_nodes.c
    parts: list[sa.Select[Any]] = []
    if 0 in levels:
        parts.append(
            sa.select(sa.literal(0, sa.SmallInteger()), leaf.leaf_index, leaf.leaf_hash).where(
                leaf.leaf_index.in_(levels.pop(0))
            )
        )
    if levels:
        parts.append(
            sa.select(n.level, n.node_index, n.hash).where(
                sa.or_(*(sa.and_(n.level == lv, n.node_index.in_(ix)) for lv, ix in levels.items()))
            )
        )
    return parts[0] if len(parts) == 1 else sa.union_all(*parts)


def _reader(found: dict[Node, bytes]) -> NodeHash:
    def node(key: Node) -> bytes:
        try:
            return found[key]
        except KeyError:
            raise AuditCorrupt(f"the log has no hash of subtree {key}") from None

    return node
