"""Plans, prices and layers set through the admin API, stored over the config's.

Precedence: built-in plans, then the config's ``[plans.*]`` and ``prices``, then what is stored
here. Every replica reads the table again every few seconds (``Overrides.refresh``), so a
change made through any replica reaches all of them without a restart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import sqlalchemy as sa

from .database import Database
from .tables import overrides

Kind = Literal["plan", "price", "layer"]


class OverrideStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def all(self, kind: Kind) -> dict[str, dict[str, Any]]:
        query = sa.select(overrides.c.name, overrides.c.body).where(overrides.c.kind == kind)
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {row.name: orjson.loads(row.body) for row in rows}

    async def put(self, kind: Kind, name: str, body: dict[str, Any]) -> None:
        raw = orjson.dumps(body).decode()
        now = datetime.now(UTC)
        async with self._db.begin_write() as conn:
            updated = await conn.execute(
                overrides.update()
                .where(overrides.c.kind == kind, overrides.c.name == name)
                .values(body=raw, updated_at=now)
            )
            if updated.rowcount:
                return
            try:
                async with conn.begin_nested():  # a racing insert may have won: update then
                    await conn.execute(
                        overrides.insert().values(kind=kind, name=name, body=raw, updated_at=now)
                    )
            except sa.exc.IntegrityError:
                await conn.execute(
                    overrides.update()
                    .where(overrides.c.kind == kind, overrides.c.name == name)
                    .values(body=raw, updated_at=now)
                )

    async def delete(self, kind: Kind, name: str) -> bool:
        async with self._db.begin_write() as conn:
            deleted = await conn.execute(
                overrides.delete().where(overrides.c.kind == kind, overrides.c.name == name)
            )
        return bool(deleted.rowcount)
