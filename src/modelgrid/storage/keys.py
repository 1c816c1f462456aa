"""API keys in the database, with an in-process cache for the request path.

A verified key is remembered for ``cache_seconds`` (5 minutes as the server sets it up), and
forgotten as soon as the change feed (changes.py) reports a change to it, its organisation or
its member: a revocation takes effect everywhere within the feed's interval, while requests
skip the database. Unknown keys are not cached: a newly created key works on its first request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa

from ..cache import SingleFlightCache
from ..keys import hash_key, new_key, public_prefix
from .database import Database
from .tables import api_keys, members, organisations

# admin: the operator's, over everything; org_admin: manages its own organisation's keys;
# user: calls the API.
Role = Literal["user", "org_admin", "admin"]
# Keys remembered at most (well under 1 KB each): a cache, not a second key table.
CACHED_KEYS = 50_000


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    prefix: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None
    org_id: str | None = None
    org: str | None = None  # the organisation's name; None for the operator's keys
    plan: str | None = None  # the organisation's plan
    expires_at: datetime | None = None
    member_id: str | None = None  # the member whose key it is, if any
    member_role: str | None = None  # owner, admin or member

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class KeyStore:
    def __init__(self, db: Database, cache_seconds: float = 1.0) -> None:
        self._db = db
        # By the key's hash; a key unknown, revoked or expired is not kept.
        self.cache: SingleFlightCache[str, KeyRecord | None] = SingleFlightCache(
            self._lookup,
            cache_seconds,
            CACHED_KEYS,
            keep=lambda record: record is not None and not record.expired(datetime.now(UTC)),
        )

    async def create(
        self,
        name: str = "",
        role: Role = "user",
        key: str | None = None,
        org_id: str | None = None,
        expires_at: datetime | None = None,
        member_id: str | None = None,
    ) -> str:
        """Store a new key and return it; this is the only time it exists in clear text."""
        key = key or new_key()
        async with self._db.begin_write() as conn:
            await conn.execute(
                api_keys.insert().values(
                    id=uuid.uuid4().hex,
                    prefix=public_prefix(key),
                    hash=hash_key(key),
                    name=name,
                    role=role,
                    created_at=datetime.now(UTC),
                    org_id=org_id,
                    expires_at=expires_at,
                    member_id=member_id,
                )
            )
        return key

    async def ensure(self, key: str, name: str, role: Role) -> bool:
        """Make ``key`` valid (an operator-supplied admin key); True when it was new."""
        async with self._db.engine.connect() as conn:
            row = (
                await conn.execute(sa.select(api_keys.c.id).where(api_keys.c.hash == hash_key(key)))
            ).first()
        if row is not None:
            async with self._db.begin_write() as conn:
                await conn.execute(
                    api_keys.update()
                    .where(api_keys.c.id == row.id)
                    .values(role=role, revoked_at=None)
                )
            return False
        await self.create(name=name, role=role, key=key)
        return True

    async def has_active(self, role: Role) -> bool:
        query = sa.select(sa.func.count()).where(
            api_keys.c.role == role, api_keys.c.revoked_at.is_(None)
        )
        async with self._db.engine.connect() as conn:
            return bool((await conn.execute(query)).scalar_one())

    async def list_all(self, org_id: str | None = None) -> list[KeyRecord]:
        """Every key, or one organisation's."""
        query = _with_org().order_by(api_keys.c.created_at)
        if org_id is not None:
            query = query.where(api_keys.c.org_id == org_id)
        async with self._db.engine.connect() as conn:
            return [_record(row) for row in await conn.execute(query)]

    async def revoke(self, ident: str, org_id: str | None = None) -> list[KeyRecord]:
        """Revoke the key with this id or public prefix (within one organisation, when
        ``org_id`` is given); return what was revoked."""
        match = sa.or_(api_keys.c.id == ident, api_keys.c.prefix == ident)
        if org_id is not None:
            match = sa.and_(match, api_keys.c.org_id == org_id)
        async with self._db.begin_write() as conn:
            rows = (
                await conn.execute(_with_org().where(match, api_keys.c.revoked_at.is_(None)))
            ).all()
            if len(rows) > 1:
                raise LookupError(f"{ident!r} matches {len(rows)} keys; use the key's id")
            if rows:
                await conn.execute(
                    api_keys.update()
                    .where(api_keys.c.id == rows[0].id)
                    .values(revoked_at=datetime.now(UTC))
                )
        self.forget()
        return [_record(row) for row in rows]

    def forget(self) -> None:
        """Drop every cached key (after a change to what keys may do)."""
        self.cache.clear()

    def key_changed(self, digest: str) -> None:
        self.cache.forget(digest)

    def org_changed(self, org_id: str) -> None:
        self.cache.forget_where(lambda record: record is not None and record.org_id == org_id)

    def member_changed(self, member_id: str) -> None:
        self.cache.forget_where(lambda record: record is not None and record.member_id == member_id)

    async def verify(self, key: str) -> KeyRecord | None:
        """The active key record for this clear-text key, or None."""
        record = await self.cache.get(hash_key(key))
        # A key cached before its expiry is refused from the cache too.
        return None if record is None or record.expired(datetime.now(UTC)) else record

    async def _lookup(self, digest: str) -> KeyRecord | None:
        async with self._db.engine.connect() as conn:
            row = (
                await conn.execute(
                    _with_org().where(api_keys.c.hash == digest, api_keys.c.revoked_at.is_(None))
                )
            ).first()
        return None if row is None else _record(row)


def _with_org() -> sa.Select[Any]:
    """Keys with their organisation's name and plan, and their member's role: one query on
    the request path."""
    joined = api_keys.outerjoin(organisations, api_keys.c.org_id == organisations.c.id).outerjoin(
        members, api_keys.c.member_id == members.c.id
    )
    return sa.select(
        api_keys,
        organisations.c.name.label("org"),
        organisations.c.plan.label("plan"),
        members.c.role.label("member_role"),
    ).select_from(joined)


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were stored in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _record(row: sa.Row[tuple[object, ...]]) -> KeyRecord:
    return KeyRecord(
        id=row.id,
        prefix=row.prefix,
        name=row.name,
        role=row.role,
        created_at=row.created_at.replace(tzinfo=row.created_at.tzinfo or UTC),
        revoked_at=_utc(row.revoked_at),
        org_id=row.org_id,
        org=row.org,
        plan=row.plan,
        expires_at=_utc(row.expires_at),
        member_id=row.member_id,
        member_role=row.member_role,
    )
