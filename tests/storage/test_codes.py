"""Redemption codes on both databases: stored as hashes, redeemed once, expiring."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from modelgrid.keys import hash_key
from modelgrid.storage.codes import CodeRejected, CodeStore
from modelgrid.storage.database import Database
from modelgrid.storage.ledger import Ledger
from modelgrid.storage.tables import credit_grants, redemption_codes

pytestmark = pytest.mark.anyio

ACCOUNT = "org:" + "a" * 32


@pytest.fixture
def store(db: Database) -> CodeStore:
    return CodeStore(db)


@pytest.fixture
def book(db: Database, tmp_path: Path) -> Ledger:
    return Ledger(db, tmp_path / "journal")  # queries only: never started


async def grants(db: Database) -> list[tuple[str, int, str, str]]:
    c = credit_grants.c
    query = sa.select(c.account, c.amount, c.kind, c.note).order_by(c.id)
    async with db.engine.connect() as conn:
        return [(r.account, int(r.amount), r.kind, r.note) for r in await conn.execute(query)]


async def test_codes_are_stored_only_as_hashes_and_listed_by_prefix(
    db: Database, store: CodeStore
) -> None:
    made = await store.create(2_500_000, count=3, note="launch")
    assert len(set(made)) == 3
    assert all(re.fullmatch(r"mgc-[A-Za-z0-9_-]{32}", code) for code in made)
    async with db.engine.connect() as conn:
        stored = (await conn.execute(sa.select(redemption_codes))).all()
    assert {row.hash for row in stored} == {hash_key(code) for code in made}
    assert not any(code in str(tuple(row)) for row in stored for code in made)

    listed = await store.list_all()
    assert sorted(r.prefix for r in listed) == sorted(code[:12] for code in made)
    now = datetime.now(UTC)
    for record in listed:
        assert (record.amount, record.note, record.status(now)) == (2_500_000, "launch", "unused")
        assert record.expires_at is None and record.redeemed_at is None
        assert record.redeemed_by is None and record.created_at.tzinfo is not None


async def test_a_code_grants_its_credits_once_in_the_ledger(
    db: Database, store: CodeStore, book: Ledger
) -> None:
    [code] = await store.create(7_000_000)
    assert await store.redeem(f" {code}\n", ACCOUNT) == 7_000_000  # pasted with whitespace
    assert await book.granted(ACCOUNT) == 7_000_000
    assert await grants(db) == [(ACCOUNT, 7_000_000, "code", f"code {code[:12]}")]

    with pytest.raises(CodeRejected) as again:
        await store.redeem(code, "org:" + "b" * 32)
    assert again.value.reason == "already redeemed"
    assert await book.granted("org:" + "b" * 32) == 0
    [record] = await store.list_all()
    assert record.redeemed_by == ACCOUNT and record.status(datetime.now(UTC)) == "redeemed"
    assert record.redeemed_at is not None
    assert abs(record.redeemed_at - datetime.now(UTC)) < timedelta(minutes=1)


async def test_unknown_and_expired_codes_are_refused_and_grant_nothing(
    db: Database, store: CodeStore, book: Ledger
) -> None:
    with pytest.raises(CodeRejected) as unknown:
        await store.redeem("mgc-not-a-code", ACCOUNT)
    assert unknown.value.reason == "unknown"

    # Offsets other than UTC must compare as instants on SQLite too, which compares text.
    plus_ten = timezone(timedelta(hours=10))
    [expired] = await store.create(
        1_000_000, expires_at=datetime.now(plus_ten) - timedelta(seconds=1)
    )
    [live] = await store.create(2_000_000, expires_at=datetime.now(plus_ten) + timedelta(hours=1))
    with pytest.raises(CodeRejected) as late:
        await store.redeem(expired, ACCOUNT)
    assert late.value.reason == "expired"
    assert await store.redeem(live, ACCOUNT) == 2_000_000
    assert await book.granted(ACCOUNT) == 2_000_000
    statuses = {r.amount: r.status(datetime.now(UTC)) for r in await store.list_all()}
    assert statuses == {1_000_000: "expired", 2_000_000: "redeemed"}
    with pytest.raises(CodeRejected) as spent:
        await store.redeem(live, ACCOUNT)
    assert spent.value.reason == "already redeemed"


async def test_concurrent_redemptions_of_one_code_grant_exactly_once(
    db: Database, store: CodeStore, book: Ledger
) -> None:
    [code] = await store.create(3_000_000)
    accounts = [f"org:{i:032d}" for i in range(20)]
    results = await asyncio.gather(
        *(store.redeem(code, account) for account in accounts), return_exceptions=True
    )
    won = [account for account, r in zip(accounts, results, strict=True) if r == 3_000_000]
    lost = [r for r in results if isinstance(r, CodeRejected)]
    assert len(won) == 1 and len(lost) == 19, results
    assert {r.reason for r in lost} == {"already redeemed"}
    [grant] = await grants(db)
    assert grant[:3] == (won[0], 3_000_000, "code")
    assert [await book.granted(a) for a in accounts].count(3_000_000) == 1
    [record] = await store.list_all()
    assert record.redeemed_by == won[0]


async def test_amount_and_count_are_checked() -> None:
    store = CodeStore(Database("sqlite://"))  # refused before any database work
    for amount, count in ((0, 1), (-5, 1), (1, 0), (1, 1001)):
        with pytest.raises(ValueError):
            await store.create(amount, count)


def _alembic(connection: sa.Connection, action: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", "modelgrid:migrations")
    config.attributes["connection"] = connection
    getattr(command, action)(config, revision)


def _columns(connection: sa.Connection) -> dict[str, set[str]]:
    inspector = sa.inspect(connection)
    return {t: {c["name"] for c in inspector.get_columns(t)} for t in inspector.get_table_names()}


async def test_the_migration_matches_the_table_and_downgrades(db: Database) -> None:
    async with db.engine.begin() as conn:
        before = await conn.run_sync(_columns)
        assert before["redemption_codes"] == {c.name for c in redemption_codes.columns}
        await conn.run_sync(_alembic, "downgrade", "0004")
        after = await conn.run_sync(_columns)
        assert "redemption_codes" not in after and "credit_grants" in after
        await conn.run_sync(_alembic, "upgrade", "head")
        assert await conn.run_sync(_columns) == before
    # The database enforces what the store checks: one row per hash, positive amounts.
    row = {"prefix": "mgc-x", "hash": "h" * 64, "created_at": datetime.now(UTC)}
    async with db.engine.begin() as conn:
        await conn.execute(redemption_codes.insert().values(id="1", amount=1, **row))
    for values in ({"id": "2", "amount": 1}, {"id": "3", "amount": 0, "hash": "g" * 64}):
        with pytest.raises(sa.exc.IntegrityError):
            async with db.engine.begin() as conn:
                await conn.execute(redemption_codes.insert().values(**{**row, **values}))
