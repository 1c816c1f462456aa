"""The changes table's reads: the newest id, the rows past a cursor, and pruning."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from .database import Database
from .tables import changes


@dataclass(frozen=True, slots=True)
class Change:
    id: int
    topic: str
    subject: str


class ChangeStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def latest(self) -> int:
        """The newest change's id, 0 when there is none."""
        async with self._db.engine.connect() as conn:
            found = (await conn.execute(sa.select(sa.func.max(changes.c.id)))).scalar_one()
        return int(found or 0)

    async def since(self, cursor: int, holes: Collection[int] = ()) -> list[Change]:
        """The changes after ``cursor``, and those among ``holes`` that have appeared."""
        where = changes.c.id > cursor
        if holes:
            where = sa.or_(where, changes.c.id.in_(sorted(holes)))
        query = sa.select(changes.c.id, changes.c.topic, changes.c.subject).where(where)
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(query.order_by(changes.c.id))
            return [Change(row.id, row.topic, row.subject) for row in rows]

    async def prune(self, before: datetime) -> int:
        """Delete changes older than ``before``; returns how many went."""
        async with self._db.begin_write() as conn:
            result = await conn.execute(changes.delete().where(changes.c.created_at < before))
        return int(result.rowcount or 0)
