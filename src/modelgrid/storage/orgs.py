"""Organisations: who keys belong to, and which plan they are on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from ..accounts import account_of_org
from .database import Database
from .tables import api_keys, credit_grants, organisations


@dataclass(frozen=True, slots=True)
class Organisation:
    id: str
    name: str
    plan: str
    keys: int = 0  # active keys
    created: bool = False  # by the call that returned it


class OrgStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def db(self) -> Database:
        return self._db

    async def get(self, name: str) -> Organisation | None:
        async with self._db.engine.connect() as conn:
            row = (
                await conn.execute(sa.select(organisations).where(organisations.c.name == name))
            ).first()
        return None if row is None else Organisation(row.id, row.name, row.plan)

    async def ensure(
        self, name: str, plan: str | None, default_plan: str, starting_credits: int = 0
    ) -> Organisation:
        """The organisation called ``name``, created on ``plan`` (or the default) if new, with
        ``starting_credits`` (micro-credits) granted in the same transaction; an existing one
        moves to ``plan`` when one is given."""
        found = await self.get(name)
        if found is None:
            org = Organisation(uuid.uuid4().hex, name, plan or default_plan, created=True)
            now = datetime.now(UTC)
            async with self._db.begin_write() as conn:
                await conn.execute(
                    organisations.insert().values(
                        id=org.id, name=name, plan=org.plan, created_at=now
                    )
                )
                if starting_credits > 0:
                    await conn.execute(
                        credit_grants.insert().values(
                            account=account_of_org(org.id),
                            amount=starting_credits,
                            kind="starting",
                            note="starting credits",
                            created_at=now,
                        )
                    )
            return org
        if plan is not None and plan != found.plan:
            async with self._db.begin_write() as conn:
                await conn.execute(
                    organisations.update().where(organisations.c.id == found.id).values(plan=plan)
                )
            return Organisation(found.id, name, plan)
        return found

    async def list_all(self) -> list[Organisation]:
        active = sa.func.count(api_keys.c.id).filter(api_keys.c.revoked_at.is_(None))
        query = (
            sa.select(organisations, active.label("keys"))
            .select_from(organisations.outerjoin(api_keys, api_keys.c.org_id == organisations.c.id))
            .group_by(organisations.c.id)
            .order_by(organisations.c.name)
        )
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(query)
            return [Organisation(r.id, r.name, r.plan, r.keys) for r in rows]
