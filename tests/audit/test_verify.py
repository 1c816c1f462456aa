"""Verification finds every kind of tampering, made with SQL on the stored rows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelgrid.audit.checkpoint import Checkpoint, sign_checkpoint
from modelgrid.audit.keys import AuditKeys
from modelgrid.audit.merkle import leaf_hash
from modelgrid.audit.verify import Problem, verify_log
from modelgrid.storage.database import Database
from modelgrid.storage.tables import audit_checkpoints, audit_leaves, audit_nodes

from .logs import ORIGIN, filled, sample

pytestmark = pytest.mark.anyio

leaf, cp, node = audit_leaves.c, audit_checkpoints.c, audit_nodes.c
PAGE = 6  # small pages, so the leaves and checkpoints are read in many


async def run(db: Database, *statements: sa.Executable) -> None:
    async with db.engine.begin() as conn:
        for statement in statements:
            await conn.execute(statement)


def shift(start: int, by: int) -> list[sa.Executable]:
    """Renumber the leaves from ``start`` by ``by``, through a detour no index collides in."""
    return [
        audit_leaves.update().where(leaf.leaf_index >= start).values(leaf_index=leaf.leaf_index + 10_000),
        audit_leaves.update()
        .where(leaf.leaf_index >= 10_000)
        .values(leaf_index=leaf.leaf_index - 10_000 + by),
    ]  # fmt: skip


async def changed_record(db: Database, keys: AuditKeys) -> None:
    await run(
        db, audit_leaves.update().where(leaf.leaf_index == 13).values(record=sample(99).to_bytes())
    )


async def changed_record_and_leaf_hash(db: Database, keys: AuditKeys) -> None:
    forged = sample(99).to_bytes().replace(b"chatcmpl-000099", b"chatcmpl-000013")
    await run(
        db,
        audit_leaves.update()
        .where(leaf.leaf_index == 13)
        .values(record=forged, leaf_hash=leaf_hash(forged)),
    )


async def deleted_leaf(db: Database, keys: AuditKeys) -> None:
    await run(db, audit_leaves.delete().where(leaf.leaf_index == 13))


async def deleted_leaf_renumbered(db: Database, keys: AuditKeys) -> None:
    await run(db, audit_leaves.delete().where(leaf.leaf_index == 13), *shift(14, -1))


async def inserted_leaf_at_the_end(db: Database, keys: AuditKeys) -> None:
    await run(db, audit_leaves.insert().values(_row(40, 40)))


async def inserted_leaf_renumbered(db: Database, keys: AuditKeys) -> None:
    await run(db, *shift(13, 1), audit_leaves.insert().values(_row(13, 77)))


async def reordered_leaves(db: Database, keys: AuditKeys) -> None:
    await run(
        db,
        audit_leaves.update().where(leaf.leaf_index == 13).values(leaf_index=-1),
        audit_leaves.update().where(leaf.leaf_index == 30).values(leaf_index=13),
        audit_leaves.update().where(leaf.leaf_index == -1).values(leaf_index=30),
    )


async def truncated(db: Database, keys: AuditKeys) -> None:
    await run(db, audit_leaves.delete().where(leaf.leaf_index >= 33))


async def forged_checkpoint_other_key(db: Database, keys: AuditKeys) -> None:
    async with db.engine.connect() as conn:
        root = (await conn.execute(sa.select(cp.root).where(cp.tree_size == 20))).scalar_one()
    note = sign_checkpoint(Checkpoint(ORIGIN, 20, bytes(root)), AuditKeys.generate())
    await run(db, audit_checkpoints.update().where(cp.tree_size == 20).values(note=note))


async def forged_checkpoint_root(db: Database, keys: AuditKeys) -> None:
    await run(db, audit_checkpoints.update().where(cp.tree_size == 20).values(root=b"\x01" * 32))


async def forged_checkpoint_note(db: Database, keys: AuditKeys) -> None:
    async with db.engine.connect() as conn:
        note = (await conn.execute(sa.select(cp.note).where(cp.tree_size == 20))).scalar_one()
    lines = str(note).split("\n")
    lines[2] = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="  # another root, the old signature
    await run(
        db,
        audit_checkpoints.update()
        .where(cp.tree_size == 20)
        .values(note="\n".join(lines), root=b"\x01" * 32),
    )


async def forged_checkpoint_added(db: Database, keys: AuditKeys) -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 30, b"\x02" * 32), AuditKeys.generate())
    await run(
        db,
        audit_checkpoints.insert().values(
            tree_size=30, root=b"\x02" * 32, note=note, created_at=sa.func.now()
        ),
    )


async def changed_subtree(db: Database, keys: AuditKeys) -> None:
    await run(
        db,
        audit_nodes.update().where(node.level == 2, node.node_index == 3).values(hash=b"\x00" * 32),
    )


async def inserted_subtree(db: Database, keys: AuditKeys) -> None:
    await run(db, audit_nodes.insert().values(level=1, node_index=20, hash=b"\x00" * 32))


async def checkpoints_deleted(db: Database, keys: AuditKeys) -> None:
    await run(db, audit_checkpoints.delete())


def _row(index: int, i: int) -> dict[str, object]:
    """A leaf row for ``sample(i)`` at ``index``, consistent in itself."""
    record = sample(i)
    data = record.to_bytes()
    return {
        "leaf_index": index,
        "content_id": record.content_id,
        "record": data,
        "leaf_hash": leaf_hash(data),
    }


@dataclass(frozen=True)
class Case:
    tamper: Callable[[Database, AuditKeys], Awaitable[None]]
    kind: str
    first: int | None = None  # the first bad leaf the answer names, exactly
    # or (the lowest first suspect leaf allowed, the bad leaf the suspect range must hold)
    within: tuple[int, int] | None = None
    tree_size: int | None = None
    says: str = ""


CASES = [
    Case(changed_record, "leaf", first=13, says="does not hash to its leaf hash"),
    Case(changed_record_and_leaf_hash, "leaf", within=(12, 13), tree_size=20),
    Case(deleted_leaf, "leaf", first=13, says="missing (deleted)"),
    Case(deleted_leaf_renumbered, "leaf", within=(12, 13), tree_size=20),
    Case(inserted_leaf_at_the_end, "leaf", first=40, says="in no signed checkpoint"),
    Case(inserted_leaf_renumbered, "leaf", within=(12, 13), tree_size=20),
    Case(reordered_leaves, "leaf", within=(12, 13), tree_size=20),
    Case(truncated, "leaf", first=33, tree_size=40, says="truncated"),
    Case(forged_checkpoint_other_key, "checkpoint", tree_size=20, says="forged"),
    Case(forged_checkpoint_root, "checkpoint", tree_size=20, says="differs from its signed note"),
    Case(forged_checkpoint_note, "checkpoint", tree_size=20, says="does not verify"),
    Case(forged_checkpoint_added, "checkpoint", tree_size=30, says="forged"),
    Case(changed_subtree, "node", within=(12, 15), says="inclusion proofs"),
    Case(inserted_subtree, "node", says="beyond the newest checkpoint"),
    Case(checkpoints_deleted, "leaf", first=0, says="in no signed checkpoint"),
]  # fmt: skip


async def test_an_untouched_log_verifies(db: Database, tmp_path: Path) -> None:
    keys = AuditKeys.generate()
    records = await filled(db, tmp_path / "journal", keys)
    result = await verify_log(db, keys.public_key(ORIGIN), page=PAGE)
    assert result.ok, result.problem
    assert (result.leaves, result.checkpoints) == (len(records), 5)
    async with db.engine.connect() as conn:
        newest = (await conn.execute(sa.select(cp.root).where(cp.tree_size == 40))).scalar_one()
    assert result.root == bytes(newest)
    assert result.summary().startswith("audit log verified: 40 leaves, 5 signed checkpoints")
    empty = await verify_log(db, keys.public_key("other.example"), page=PAGE)
    assert not empty.ok  # checkpoints signed for one origin do not pass for another


async def test_an_empty_log_verifies(db: Database) -> None:
    result = await verify_log(db, AuditKeys.generate().public_key(ORIGIN))
    assert result.ok and result.leaves == 0 and result.checkpoints == 0


@pytest.mark.parametrize("case", CASES, ids=[c.tamper.__name__ for c in CASES])
async def test_tampering_is_found_and_the_first_bad_leaf_named(
    db: Database, tmp_path: Path, case: Case
) -> None:
    keys = AuditKeys.generate()
    records = await filled(db, tmp_path / "journal", keys)
    await case.tamper(db, keys)
    result = await verify_log(db, keys.public_key(ORIGIN), page=PAGE)
    problem = result.problem
    assert isinstance(problem, Problem), "tampering went unnoticed"
    assert problem.kind == case.kind, problem
    assert case.says in problem.message, problem
    if case.first is not None:
        assert problem.leaf_index == case.first, problem
    if case.within is not None:
        assert problem.leaf_index is not None and problem.last_index is not None, problem
        assert case.within[0] <= problem.leaf_index <= case.within[1] <= problem.last_index
        assert problem.last_index - problem.leaf_index <= 3, problem  # narrowed down
    if case.tree_size is not None:
        assert problem.tree_size == case.tree_size, problem
    if problem.content_id is not None and problem.leaf_index is not None:
        assert problem.content_id == [*records, sample(40)][problem.leaf_index].content_id
    assert result.summary().startswith("audit log NOT verified: ")
