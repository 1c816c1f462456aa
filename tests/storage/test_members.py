"""Members on both databases: roles carry to keys, removal revokes, one owner always stays."""

from __future__ import annotations

import asyncio

import pytest

from modelgrid.storage.database import Database
from modelgrid.storage.keys import KeyStore
from modelgrid.storage.members import MemberError, MemberStore
from modelgrid.storage.orgs import OrgStore

pytestmark = pytest.mark.anyio


async def test_members_roles_and_their_keys(database_url: str) -> None:
    db = Database(database_url)
    await db.migrate()
    try:
        org = await OrgStore(db).ensure("acme", None, "free")
        store, keys = MemberStore(db), KeyStore(db, cache_seconds=0)
        owner = await store.add(org.id, "Ada@Example.com", "Ada", "owner")
        assert owner.email == "ada@example.com"  # one address, however it is typed
        with pytest.raises(MemberError):
            await store.add(org.id, "ada@example.com", "", "member")
        bob = await store.add(org.id, "bob@example.com", "Bob", "member")
        key = await keys.create(name="bob", role="user", org_id=org.id, member_id=bob.id)
        record = await keys.verify(key)
        assert record is not None and (record.member_id, record.member_role) == (bob.id, "member")
        await store.set_role(bob, "admin")
        record = await keys.verify(key)
        assert record is not None and record.role == "org_admin" and record.member_role == "admin"
        listed = {m.email: (m.role, m.keys) for m in await store.list(org.id)}
        assert listed == {"ada@example.com": ("owner", 0), "bob@example.com": ("admin", 1)}
        assert await store.get(org.id, bob.id) == await store.get(org.id, "BOB@example.com")
        assert await store.remove(await store.get(org.id, bob.id)) == 1  # type: ignore[arg-type]
        assert await keys.verify(key) is None  # the member's key went with them
        assert [m.email for m in await store.list(org.id)] == ["ada@example.com"]
    finally:
        await db.close()


async def test_an_organisation_keeps_an_owner(database_url: str) -> None:
    db = Database(database_url)
    await db.migrate()
    try:
        org = await OrgStore(db).ensure("solo", None, "free")
        store = MemberStore(db)
        ada = await store.add(org.id, "ada@example.com", "", "owner")
        with pytest.raises(MemberError, match="at least one owner"):
            await store.set_role(ada, "admin")
        with pytest.raises(MemberError, match="at least one owner"):
            await store.remove(ada)
        cy = await store.add(org.id, "cy@example.com", "", "owner")
        # Two owners demoting each other at once: one must be refused.
        results = await asyncio.gather(
            store.set_role(ada, "member"), store.set_role(cy, "member"), return_exceptions=True
        )
        assert sum(isinstance(r, Exception) for r in results) == 1
        assert [m.role for m in await store.list(org.id)].count("owner") == 1
    finally:
        await db.close()
