"""The key store on both databases ModelGrid supports."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from modelgrid.keys import hash_key
from modelgrid.storage import keys as keys_module
from modelgrid.storage.database import Database
from modelgrid.storage.keys import KeyStore
from modelgrid.storage.tables import api_keys

pytestmark = pytest.mark.anyio


async def store_for(url: str, cache_seconds: float = 0.0) -> tuple[Database, KeyStore]:
    db = Database(url)
    await db.migrate()
    await db.migrate()  # a second start finds the schema current
    return db, KeyStore(db, cache_seconds=cache_seconds)


async def test_keys_are_stored_only_as_hashes(database_url: str) -> None:
    db, store = await store_for(database_url)
    try:
        key = await store.create(name="ci")
        async with db.engine.connect() as conn:
            rows = (await conn.execute(sa.select(api_keys))).all()
        assert len(rows) == 1
        assert key not in {str(v) for v in rows[0]}
        assert rows[0].prefix == key[:11]
        record = await store.verify(key)
        assert record is not None and record.name == "ci" and record.role == "user"
        assert await store.verify(key + "x") is None
    finally:
        await db.close()


async def test_revoke_by_prefix_or_id(database_url: str) -> None:
    db, store = await store_for(database_url)
    try:
        first, second = await store.create(), await store.create()
        records = {r.prefix: r for r in await store.list_all()}
        assert len(records) == 2
        assert (await store.revoke(first[:11]))[0].prefix == first[:11]
        assert await store.verify(first) is None
        assert await store.revoke(first[:11]) == []  # already revoked
        assert (await store.revoke(records[second[:11]].id))[0].id == records[second[:11]].id
        assert await store.verify(second) is None
        assert all(not r.active for r in await store.list_all())
    finally:
        await db.close()


async def test_revocation_clears_the_cache_of_this_process(database_url: str) -> None:
    db, store = await store_for(database_url, cache_seconds=60)
    try:
        key = await store.create()
        assert await store.verify(key) is not None
        await store.revoke(key[:11])
        assert await store.verify(key) is None
    finally:
        await db.close()


async def test_another_process_sees_a_revocation_once_its_cache_expires(database_url: str) -> None:
    db, store = await store_for(database_url, cache_seconds=0)
    other_db, other = await store_for(database_url, cache_seconds=0)
    try:
        key = await store.create()
        assert await other.verify(key) is not None
        await store.revoke(key[:11])
        assert await other.verify(key) is None
    finally:
        await db.close()
        await other_db.close()


async def test_operator_admin_key_is_ensured_once(database_url: str) -> None:
    db, store = await store_for(database_url)
    try:
        assert not await store.has_active("admin")
        assert await store.ensure("mg-operator-chosen-key", name="admin", role="admin") is True
        assert await store.ensure("mg-operator-chosen-key", name="admin", role="admin") is False
        record = await store.verify("mg-operator-chosen-key")
        assert record is not None and record.role == "admin"
        assert await store.has_active("admin")
    finally:
        await db.close()


async def test_concurrent_requests_share_one_lookup_when_the_cache_expires(
    database_url: str,
) -> None:
    """A busy key's expiring cache entry must not send every waiting request to the database
    at once: that stampede was the p99 tail under load (benchmarks/overhead.py)."""
    db, store = await store_for(database_url, cache_seconds=60)
    try:
        key = await store.create()
        queries = []
        sa.event.listen(
            db.engine.sync_engine, "before_cursor_execute", lambda *a: queries.append(a[2])
        )
        records = await asyncio.gather(*(store.verify(key) for _ in range(50)))
        assert all(r is not None and r.prefix == key[:11] for r in records)
        assert len(queries) == 1
        await asyncio.gather(*(store.verify(key) for _ in range(50)))
        assert len(queries) == 1  # cached now
    finally:
        await db.close()


async def test_organisations_carry_keys_and_plans(database_url: str) -> None:
    from modelgrid.storage.orgs import OrgStore

    db, store = await store_for(database_url)
    orgs = OrgStore(db)
    try:
        acme = await orgs.ensure("acme", None, default_plan="free")
        assert (acme.name, acme.plan) == ("acme", "free")
        assert (await orgs.ensure("acme", None, default_plan="pro")).plan == "free"  # kept
        key = await store.create(org_id=acme.id)
        await store.create(org_id=acme.id)
        record = await store.verify(key)
        assert record is not None and (record.org, record.plan) == ("acme", "free")
        moved = await orgs.ensure("acme", "pro", default_plan="free")
        assert moved.plan == "pro" and moved.id == acme.id
        assert [(o.name, o.plan, o.keys) for o in await orgs.list_all()] == [("acme", "pro", 2)]
        await store.revoke(key[:11])
        assert (await orgs.list_all())[0].keys == 1
        operator = await store.create(role="admin")
        admin = await store.verify(operator)
        assert admin is not None and admin.org is None and admin.plan is None
    finally:
        await db.close()


async def test_an_expired_key_is_refused_even_from_the_cache(database_url: str) -> None:
    from datetime import UTC, datetime, timedelta

    db, store = await store_for(database_url, cache_seconds=60)
    try:
        soon = datetime.now(UTC) + timedelta(seconds=0.3)
        key = await store.create(expires_at=soon)
        never = await store.create()
        record = await store.verify(key)
        assert record is not None and record.expires_at is not None
        assert abs((record.expires_at - soon).total_seconds()) < 0.01
        await asyncio.sleep(0.35)  # just past the expiry, no longer
        assert await store.verify(key) is None  # the cached record expired too
        assert await store.verify(never) is not None
        past = await store.create(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        assert await store.verify(past) is None
    finally:
        await db.close()


async def test_the_cache_is_bounded_and_lets_the_oldest_go(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys_module, "CACHED_KEYS", 10)
    db, store = await store_for(database_url, cache_seconds=60)
    try:
        made = [await store.create() for _ in range(12)]
        for key in made:
            assert await store.verify(key) is not None
        cached = store.cache
        assert len(cached) == 10
        assert hash_key(made[0]) not in cached and hash_key(made[-1]) in cached
    finally:
        await db.close()
