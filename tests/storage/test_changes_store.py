"""The change feed on both databases: the triggers that write it, and the caches it keeps
fresh when another process (a replica, the CLI) makes the change."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelgrid.accounts import account_of_org
from modelgrid.changes import ChangeFeed
from modelgrid.counters import MemoryCounters
from modelgrid.metering import Meter
from modelgrid.storage.changes import ChangeStore
from modelgrid.storage.database import Database
from modelgrid.storage.keys import KeyStore
from modelgrid.storage.ledger import Ledger
from modelgrid.storage.members import MemberStore
from modelgrid.storage.orgs import OrgStore
from modelgrid.storage.tables import api_keys, changes

from .test_ledger import migration_round_trip

pytestmark = pytest.mark.anyio


async def topics(store: ChangeStore, after: int) -> list[tuple[str, str]]:
    return [(c.topic, c.subject) for c in await store.since(after)]


async def test_the_database_records_what_caches_depend_on(db: Database) -> None:
    store, keys, orgs = ChangeStore(db), KeyStore(db), OrgStore(db)
    org = await orgs.ensure("acme", "free", "free", starting_credits=5)
    key = await keys.create(org_id=org.id)
    start = await store.latest()
    # New organisations and keys change nothing cached (unknown keys are never cached); the
    # starting grant is a change to the new account's credits.
    assert await topics(store, 0) == [("credits", account_of_org(org.id))]

    await keys.revoke(key[:11])
    await orgs.ensure("acme", "pro", "free")
    await Ledger(db, Path("unused")).grant(account_of_org(org.id), 7, "topup")
    async with db.begin_write() as conn:  # by hand, as an operator might
        await conn.execute(sa.delete(api_keys))
    digest = (await store.since(start))[0].subject
    assert await topics(store, start) == [
        ("key", digest),
        ("org", org.id),
        ("credits", account_of_org(org.id)),
        ("key", digest),
    ]
    assert len(digest) == 64  # the key's hash, never the key


async def test_another_process_revocation_reaches_a_long_cache_at_the_next_read(
    database_url: str,
) -> None:
    here, there = Database(database_url), Database(database_url)
    await here.migrate()
    try:
        keys, elsewhere = KeyStore(here, cache_seconds=3600), KeyStore(there)
        feed = ChangeFeed(ChangeStore(here), interval=0)
        feed.listen("key", keys.key_changed)
        await feed.start()
        kept, revoked = await keys.create(), await keys.create()
        assert await keys.verify(kept) is not None and await keys.verify(revoked) is not None
        await elsewhere.revoke(revoked[:11])
        assert await keys.verify(revoked) is not None  # cached: no read yet
        await feed.read()
        assert await keys.verify(revoked) is None
        assert len(keys.cache) == 1  # the other key stays cached
    finally:
        await here.close()
        await there.close()


async def test_plan_and_member_changes_reach_every_key_of_theirs(db: Database) -> None:
    keys, orgs, people = KeyStore(db, cache_seconds=3600), OrgStore(db), MemberStore(db)
    feed = ChangeFeed(ChangeStore(db), interval=0)
    feed.listen("key", keys.key_changed)
    feed.listen("org", keys.org_changed)
    feed.listen("member", keys.member_changed)
    await feed.start()
    org = await orgs.ensure("acme", "free", "free")
    owner = await people.add(org.id, "o@example.com", "O", "owner")
    member = await people.add(org.id, "m@example.com", "M", "member")
    key = await keys.create(org_id=org.id, member_id=member.id)
    other = await keys.create(org_id=org.id, member_id=owner.id)
    before = await keys.verify(key)
    assert before is not None and before.plan == "free" and before.member_role == "member"

    await OrgStore(db).ensure("acme", "pro", "free")  # as another process would
    await feed.read()
    after = await keys.verify(key)
    assert after is not None and after.plan == "pro"

    await MemberStore(db).set_role(member, "admin")
    await feed.read()
    promoted = await keys.verify(key)
    assert promoted is not None and promoted.member_role == "admin"
    assert promoted.role == "org_admin"

    await MemberStore(db).remove(member)
    await feed.read()
    assert await keys.verify(key) is None
    assert await keys.verify(other) is not None


async def test_a_grant_elsewhere_reaches_the_credits_cap_at_the_next_read(
    db: Database, tmp_path: Path
) -> None:
    ledger = Ledger(db, tmp_path / "journal")
    meter = Meter(MemoryCounters(), ledger, {}, cache_seconds=3600)
    feed = ChangeFeed(ChangeStore(db), interval=0)
    feed.listen("credits", meter.granted_changed)
    await feed.start()
    account = account_of_org("o1")
    await ledger.grant(account, 100, "starting")
    assert await meter._granted.get(account) == 100
    await Ledger(db, tmp_path / "other").grant(account, 50, "topup")  # another process
    assert await meter._granted.get(account) == 100  # cached: no read yet
    await feed.read()
    assert await meter._granted.get(account) == 150


async def test_a_lookup_a_change_overtook_is_not_cached(db: Database) -> None:
    """The look-up may have read the row before the change: caching it would keep the old row
    for the cache's whole life, past the change the feed already reported."""
    keys = KeyStore(db, cache_seconds=3600)
    key = await keys.create()
    lookup = asyncio.ensure_future(keys.verify(key))
    while not keys.cache.loading:  # noqa: ASYNC110 (until the look-up is under way)
        await asyncio.sleep(0)
    keys.key_changed("something")
    assert await lookup is not None
    assert len(keys.cache) == 0
    assert await keys.verify(key) is not None
    assert len(keys.cache) == 1


async def test_pruning_never_lets_an_id_come_back(db: Database) -> None:
    """Readers keep a cursor: were the newest rows pruned and their ids handed out again, the
    changes made with them would never be read."""
    store, orgs = ChangeStore(db), OrgStore(db)
    org = await orgs.ensure("acme", "free", "free")
    await orgs.ensure("acme", "pro", "free")
    newest = await store.latest()
    assert newest > 0
    assert await store.prune(datetime.now(UTC) + timedelta(days=1)) == 1
    async with db.engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(changes))).scalar() == 0
    await orgs.ensure("acme", "team", "free")
    assert [c.id for c in await store.since(newest)] == [newest + 1]
    assert (await store.since(0))[0].subject == org.id


async def test_the_migration_matches_the_table_and_downgrades(db: Database) -> None:
    await migration_round_trip(db, (changes,), "0014", "shadow_pairs")
    orgs = OrgStore(db)  # the triggers came back with the table
    org = await orgs.ensure("acme", "free", "free")
    await orgs.ensure("acme", "pro", "free")
    assert await topics(ChangeStore(db), 0) == [("org", org.id)]


async def test_the_feed_s_age_starts_again_at_each_read(db: Database) -> None:
    """What /metrics shows as modelgrid_change_feed_age_seconds."""
    feed = ChangeFeed(ChangeStore(db), interval=0)
    assert not feed.polling
    await feed.start()
    await asyncio.sleep(0.05)
    waited = feed.age()
    assert waited >= 0.05
    await feed.read()
    assert feed.age() < waited
