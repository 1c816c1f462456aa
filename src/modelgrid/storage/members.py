"""An organisation's members: the people behind its keys, each an owner, an admin or a member.

A member's keys carry the member's powers: an owner's or an admin's keys manage the
organisation (its members, keys, usage), a member's keys call the API. Changing a member's role
changes their keys' in the same transaction; removing a member revokes their keys. An
organisation always keeps at least one owner.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .database import Database
from .tables import api_keys, members

MemberRole = Literal["owner", "admin", "member"]
ROLES: tuple[MemberRole, ...] = ("owner", "admin", "member")


def key_role(role: MemberRole) -> Literal["org_admin", "user"]:
    """What a member's keys may do."""
    return "user" if role == "member" else "org_admin"


class MemberError(ValueError):
    """A change the rules forbid; the message says which rule."""


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    org_id: str
    email: str
    name: str
    role: MemberRole
    created_at: datetime
    keys: int = 0  # active keys


class MemberStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, org_id: str, email: str, name: str, role: MemberRole) -> Member:
        email = email.strip().lower()
        if await self.get(org_id, email) is not None:
            raise MemberError(f"{email} is already a member.")
        member = Member(uuid.uuid4().hex, org_id, email, name, role, datetime.now(UTC))
        async with self._db.begin_write() as conn:
            await conn.execute(
                members.insert().values(
                    id=member.id,
                    org_id=org_id,
                    email=email,
                    name=name,
                    role=role,
                    created_at=member.created_at,
                )
            )
        return member

    async def list(self, org_id: str) -> list[Member]:
        active = sa.func.count(api_keys.c.id).filter(api_keys.c.revoked_at.is_(None))
        query = (
            sa.select(members, active.label("keys"))
            .select_from(members.outerjoin(api_keys, api_keys.c.member_id == members.c.id))
            .where(members.c.org_id == org_id, members.c.removed_at.is_(None))
            .group_by(members.c.id)
            .order_by(members.c.created_at)
        )
        async with self._db.engine.connect() as conn:
            return [_member(row, row.keys) for row in await conn.execute(query)]

    async def get(self, org_id: str, ident: str) -> Member | None:
        """The member with this id or e-mail address."""
        match = sa.or_(members.c.id == ident, members.c.email == ident.strip().lower())
        query = sa.select(members).where(
            members.c.org_id == org_id, members.c.removed_at.is_(None), match
        )
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _member(row)

    async def set_role(self, member: Member, role: MemberRole) -> Member:
        demoting = member.role == "owner" and role != "owner"
        async with self._db.begin_write() as conn:
            if demoting:
                await _lock_owners(conn, member.org_id)
            await conn.execute(members.update().where(members.c.id == member.id).values(role=role))
            if demoting:
                await _keep_an_owner(conn, member.org_id)
            await conn.execute(
                api_keys.update()
                .where(api_keys.c.member_id == member.id)
                .values(role=key_role(role))
            )
        return Member(member.id, member.org_id, member.email, member.name, role, member.created_at)

    async def remove(self, member: Member) -> int:
        """Remove the member and revoke their keys; returns how many keys were revoked."""
        now = datetime.now(UTC)
        async with self._db.begin_write() as conn:
            if member.role == "owner":
                await _lock_owners(conn, member.org_id)
            await conn.execute(
                members.update().where(members.c.id == member.id).values(removed_at=now)
            )
            if member.role == "owner":
                await _keep_an_owner(conn, member.org_id)
            revoked = await conn.execute(
                api_keys.update()
                .where(api_keys.c.member_id == member.id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return int(revoked.rowcount)


def _owners(org_id: str) -> sa.Select[tuple[str]]:
    return sa.select(members.c.id).where(
        members.c.org_id == org_id, members.c.role == "owner", members.c.removed_at.is_(None)
    )


async def _lock_owners(conn: AsyncConnection, org_id: str) -> None:
    """Hold the owners' rows until the change commits (PostgreSQL), so that two owners
    demoting each other at once are taken one after the other."""
    await conn.execute(_owners(org_id).with_for_update())


async def _keep_an_owner(conn: AsyncConnection, org_id: str) -> None:
    """After the change, inside its transaction: refuse it (roll it back) if no owner is
    left. SQLite has one writer at a time, so there too the second change sees the first."""
    if not (await conn.execute(_owners(org_id))).first():
        raise MemberError("An organisation keeps at least one owner; make another owner first.")


def _member(row: sa.Row[tuple[object, ...]], keys: int = 0) -> Member:
    created = row.created_at
    return Member(
        row.id,
        row.org_id,
        row.email,
        row.name,
        row.role,
        created if created.tzinfo else created.replace(tzinfo=UTC),
        int(keys),
    )
