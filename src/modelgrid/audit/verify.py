"""Verify the whole audit log from its leaves, a page at a time.

It walks the leaves in index order and the checkpoints in size order, recomputing the tree as it
goes (a frontier: O(log n) hashes), and stops at the first thing that does not hold:

- a leaf whose record does not hash to its stored leaf hash, or whose record is not the content
  id its row says: that leaf, exactly;
- an index missing (a deleted leaf) or leaves ending before a checkpoint (a truncated log): the
  first missing index;
- a checkpoint whose note is not signed by the public key for the log's origin, or whose row
  disagrees with its note: that checkpoint, forged;
- a signed root the leaves no longer give (a record changed along with its leaf hash, leaves
  reordered, inserted or deleted and renumbered): the leaves since the previous checkpoint are
  suspect, narrowed to the first stored subtree whose hash the leaves no longer give, which
  for one changed leaf is that leaf and its neighbour;
- a stored subtree that differs although the signed root holds: that subtree (proofs through it
  fail, the leaves are fine);
- successive checkpoints that no consistency proof joins, or leaves and subtrees beyond the
  newest checkpoint (inserted).

Checkpoints committed while it runs are left for the next run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from ..storage.database import Database
from ..storage.tables import audit_checkpoints, audit_leaves, audit_nodes
from .checkpoint import InvalidCheckpoint, open_checkpoint
from .keys import PublicKey
from .merkle import (
    EMPTY_ROOT,
    CompactRange,
    Node,
    consistency_proof,
    leaf_hash,
    verify_consistency,
)
from .record import AuditRecord


@dataclass(frozen=True, slots=True)
class Problem:
    kind: Literal["leaf", "node", "checkpoint"]
    message: str
    leaf_index: int | None = None  # the first bad leaf, or the first of the suspect ones
    last_index: int | None = None  # the last suspect leaf, when the evidence names a range
    content_id: str | None = None  # leaf_index's, when it is still stored
    tree_size: int | None = None  # the checkpoint's

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "leaf_index": self.leaf_index,
            "last_index": self.last_index,
            "content_id": self.content_id,
            "tree_size": self.tree_size,
        }


@dataclass(frozen=True, slots=True)
class Verification:
    leaves: int  # leaves verified
    checkpoints: int  # checkpoints verified
    root: bytes  # the tree hash of the leaves verified
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def summary(self) -> str:
        if self.problem is not None:
            return f"audit log NOT verified: {self.problem.message}"
        return (
            f"audit log verified: {self.leaves} leaves, {self.checkpoints} signed checkpoints, "
            f"root {self.root.hex()}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "leaves": self.leaves,
            "checkpoints": self.checkpoints,
            "root": self.root.hex(),
            "problem": None if self.problem is None else self.problem.to_json(),
        }


async def verify_log(db: Database, public_key: PublicKey, page: int = 2000) -> Verification:
    walk = _Walk(db, public_key, page)
    problem = await walk.run()
    return Verification(walk.tree.end, walk.checkpoints, walk.tree.root, problem)


class _Walk:
    def __init__(self, db: Database, key: PublicKey, page: int) -> None:
        self.db, self.key, self.page = db, key, page
        self.tree = CompactRange()  # the frontier of the leaves verified so far
        self.signed = (0, EMPTY_ROOT)  # the last checkpoint verified, and its tree's frontier
        self.signed_tree = CompactRange()
        self.since = CompactRange()  # the leaves after it
        self.suspect: Node | None = None  # the first stored subtree the leaves since disagree with
        self.checkpoints = 0

    async def run(self) -> Problem | None:
        bound = await self._newest_size()
        async for size, root, note in self._checkpoints(bound):
            problem = await self._leaves_until(size)
            if problem is None:
                problem = await self._checkpoint(size, bytes(root), note)
            if problem is not None:
                return problem
        return await self._beyond()

    async def _newest_size(self) -> int:
        query = sa.select(sa.func.coalesce(sa.func.max(audit_checkpoints.c.tree_size), 0))
        async with self.db.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def _checkpoints(self, bound: int) -> AsyncIterator[tuple[int, bytes, str]]:
        c, after = audit_checkpoints.c, 0
        while True:
            query = (
                sa.select(c.tree_size, c.root, c.note)
                .where(c.tree_size > after, c.tree_size <= bound)
                .order_by(c.tree_size)
                .limit(self.page)
            )
            async with self.db.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
            for size, root, note in rows:
                yield int(size), bytes(root), str(note)
            if len(rows) < self.page:
                return
            after = int(rows[-1].tree_size)

    async def _leaves_until(self, size: int) -> Problem | None:
        c = audit_leaves.c
        while self.tree.end < size:
            start = self.tree.end
            stop = min(size, start + self.page)
            query = (
                sa.select(c.leaf_index, c.content_id, c.record, c.leaf_hash)
                .where(c.leaf_index >= start, c.leaf_index < stop)
                .order_by(c.leaf_index)
            )
            async with self.db.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
            hashes: list[bytes] = []
            for index, content_id, record, stored in rows:
                if index != start + len(hashes):
                    return self._missing(start + len(hashes), size, int(index))
                problem = _leaf_problem(int(index), str(content_id), bytes(record), bytes(stored))
                if problem is not None:
                    return problem
                hashes.append(bytes(stored))
            if start + len(hashes) < stop:
                return self._missing(start + len(hashes), size, await self._next_leaf(stop))
            self.tree, completed = self.tree.extend(hashes)
            self.since, _ = self.since.extend(hashes)
            await self._compare_subtrees(completed)
        return None

    async def _next_leaf(self, after: int) -> int | None:
        query = sa.select(sa.func.min(audit_leaves.c.leaf_index)).where(
            audit_leaves.c.leaf_index >= after
        )
        async with self.db.engine.connect() as conn:
            found = (await conn.execute(query)).scalar_one_or_none()
        return None if found is None else int(found)

    def _missing(self, index: int, size: int, later: int | None) -> Problem:
        if later is None:
            message = f"the log is truncated: checkpoint {size} signed {size} leaves, "
            message += f"leaf {index} and after are gone"
        else:
            message = f"leaf {index} is missing (deleted): the next stored leaf is {later}"
        return Problem("leaf", message, leaf_index=index, tree_size=size)

    async def _compare_subtrees(self, completed: list[tuple[Node, bytes]]) -> None:
        if self.suspect is not None or not completed:
            return  # the first one found is the one that counts
        n = audit_nodes.c
        spans: dict[int, tuple[int, int]] = {}
        for (level, index), _ in completed:
            low, high = spans.get(level, (index, index))
            spans[level] = (min(low, index), max(high, index))
        query = sa.select(n.level, n.node_index, n.hash).where(
            sa.or_(
                *(
                    sa.and_(n.level == level, n.node_index.between(low, high))
                    for level, (low, high) in spans.items()
                )
            )
        )
        async with self.db.engine.connect() as conn:
            stored = {(int(lv), int(i)): bytes(h) for lv, i, h in await conn.execute(query)}
        for node, value in completed:
            if stored.get(node) != value:
                self.suspect = node
                return

    async def _checkpoint(self, size: int, root: bytes, note: str) -> Problem | None:
        try:
            signed = open_checkpoint(note, self.key)
        except InvalidCheckpoint as exc:
            return Problem("checkpoint", f"checkpoint {size} is forged: {exc}", tree_size=size)
        if signed.size != size or signed.root != root:
            message = f"checkpoint {size} is forged: its row differs from its signed note"
            return Problem("checkpoint", message, tree_size=size)
        if signed.root != self.tree.root:
            return await self._bad_leaves(size)
        if self.suspect is not None:
            (level, index), self.suspect = self.suspect, None
            first, last = index << level, ((index + 1) << level) - 1
            message = f"the stored hash of subtree {(level, index)} (leaves {first} to {last}) "
            message += "differs from its leaves: inclusion proofs through it fail"
            return Problem("node", message, leaf_index=first, last_index=last, tree_size=size)
        old, old_root = self.signed
        nodes = dict(zip(self.signed_tree.nodes, self.signed_tree.hashes, strict=True))
        nodes.update(zip(self.since.nodes, self.since.hashes, strict=True))
        proof = consistency_proof(old, size, nodes.__getitem__)
        if not verify_consistency(old, size, old_root, signed.root, proof):
            message = f"checkpoints {old} and {size} are not consistent"
            return Problem("checkpoint", message, tree_size=size)
        self.signed, self.signed_tree = (size, signed.root), self.tree
        self.since = CompactRange(size, size)
        self.checkpoints += 1
        return None

    async def _bad_leaves(self, size: int) -> Problem:
        """The operator signed this root; the leaves since the last good checkpoint no longer
        give it. The first stored subtree they disagree with narrows down where."""
        first, last = self.signed[0], size - 1
        if self.suspect is not None:
            level, index = self.suspect
            first, last = max(first, index << level), min(last, ((index + 1) << level) - 1)
        c = audit_leaves.c
        async with self.db.engine.connect() as conn:
            query = sa.select(c.content_id).where(c.leaf_index == first)
            content_id = (await conn.execute(query)).scalar_one_or_none()
        which = f"leaf {first} ({content_id})"
        if last > first:
            which = f"{which} or a leaf after it up to {last}"
        message = f"{which} was changed, reordered, inserted or deleted: "
        message += f"checkpoint {size} signed a root that the leaves no longer give"
        return Problem("leaf", message, first, last, content_id, size)

    async def _beyond(self) -> Problem | None:
        """Leaves and subtrees that no checkpoint covers, which only an insertion makes (a
        commit stores its leaves, subtrees and checkpoint together)."""
        size = await self._newest_size()
        leaf, n = audit_leaves.c, audit_nodes.c
        async with self.db.engine.connect() as conn:
            query = (
                sa.select(leaf.leaf_index, leaf.content_id)
                .where(sa.or_(leaf.leaf_index < 0, leaf.leaf_index >= size))
                .order_by(leaf.leaf_index)
                .limit(1)
            )
            extra = (await conn.execute(query)).first()
            query = sa.select(n.level, sa.func.max(n.node_index)).group_by(n.level)
            highest = (await conn.execute(query)).all()
        if extra is not None:
            index, content_id = int(extra.leaf_index), str(extra.content_id)
            message = f"leaf {index} ({content_id}) is in no signed checkpoint: it was inserted"
            return Problem("leaf", message, leaf_index=index, content_id=content_id)
        for level, index in highest:
            if level < 1 or (int(index) + 1) << int(level) > size:
                message = f"the stored subtree {(int(level), int(index))} is beyond the newest "
                message += f"checkpoint ({size} leaves): it was inserted"
                return Problem("node", message, tree_size=size)
        return None


def _leaf_problem(index: int, content_id: str, record: bytes, stored: bytes) -> Problem | None:
    def bad(why: str) -> Problem:
        message = f"leaf {index} ({content_id}) {why}"
        return Problem("leaf", message, leaf_index=index, content_id=content_id)

    if leaf_hash(record) != stored:
        return bad("was changed: its record does not hash to its leaf hash")
    try:
        named = AuditRecord.from_bytes(record).content_id
    except (ValueError, KeyError, TypeError):
        return bad("was changed: its record is not an audit record")
    if named != content_id:
        return bad(f"was changed: its record is content {named!r}")
    return None
