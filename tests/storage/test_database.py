"""Database helpers on both databases: batched inserts that skip what is stored, batched
deletes, and writers that take turns."""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgrid.storage import database
from modelgrid.storage.database import Database
from modelgrid.storage.tables import provenance_index

pytestmark = pytest.mark.anyio


async def count(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int(
            (
                await conn.execute(sa.select(sa.func.count()).select_from(provenance_index))
            ).scalar_one()
        )


def index_rows() -> npt.NDArray[np.int64]:
    """1,500 index rows, more than three statements' worth at 400, 64-bit keys at both ends."""
    keys = np.array([-(2**63), -1, 0, 1, 2**63 - 1] * 300, dtype=np.int64)
    return np.column_stack((keys, np.arange(len(keys), dtype=np.int64)))


async def test_insert_new_takes_many_rows_and_skips_the_stored_ones(db: Database) -> None:
    # More rows than one SQLite statement takes, repeats within a batch and across batches.
    first = [(k, k % 7) for k in range(1234)]
    async with db.begin_write() as conn:
        await db.insert_new(
            conn, provenance_index, ("band_key", "ref"), first + first[:10], "band_key, ref"
        )
    assert await count(db) == 1234
    again = [(k, k % 7) for k in range(1000, 2500)]
    async with db.begin_write() as conn:
        await db.insert_new(conn, provenance_index, ("band_key", "ref"), again, "band_key, ref")
    assert await count(db) == 2500
    async with db.engine.connect() as conn:
        rows = set((await conn.execute(sa.select(provenance_index))).all())
    assert rows == {(k, k % 7) for k in range(2500)}


async def test_insert_array_takes_integer_rows_in_any_number_of_statements(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The provenance index's rows, from an int64 array: 64-bit values at both ends, more rows
    # than one statement takes, some already stored, some twice in one call, none at all.
    monkeypatch.setattr(database, "_JSON_ROWS", 400)
    rows, columns = index_rows(), ("band_key", "ref")
    async with db.begin_write() as conn:
        await db.insert_array(conn, provenance_index, columns, rows, "band_key, ref")
        twice = np.vstack((rows[:7], rows[:3]))
        await db.insert_array(conn, provenance_index, columns, twice, "band_key, ref")
        await db.insert_array(conn, provenance_index, columns, rows[:0], "band_key, ref")
        await db.insert_new(conn, provenance_index, columns, [[5, -5], (6, -6)], "band_key, ref")
    async with db.engine.connect() as conn:
        stored = set((await conn.execute(sa.select(provenance_index))).all())
    assert stored == {(k, r) for k, r in rows.tolist()} | {(5, -5), (6, -6)}
    assert all(type(k) is int and type(r) is int for k, r in stored)


async def test_delete_array_deletes_exactly_the_rows_given(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Retention's way out of the index: more rows than one statement takes, 64-bit values at
    # both ends, rows given twice, rows not stored, rows sharing a key with a kept one.
    monkeypatch.setattr(database, "_JSON_ROWS", 400)
    rows, columns = index_rows(), ("band_key", "ref")
    gone = rows[::2]
    absent = np.array([[0, -1], [2**63 - 1, -2]], dtype=np.int64)
    async with db.begin_write() as conn:
        await db.insert_array(conn, provenance_index, columns, rows, "band_key, ref")
        await db.delete_array(conn, provenance_index, columns, np.vstack((gone, gone[:5], absent)))
        await db.delete_array(conn, provenance_index, columns, rows[:0])
    async with db.engine.connect() as conn:
        stored = set((await conn.execute(sa.select(provenance_index))).all())
    assert stored == {(k, r) for k, r in rows[1::2].tolist()}


async def test_writers_take_turns_and_all_commit(db: Database) -> None:
    async def write(n: int) -> None:
        async with db.begin_write() as conn:
            rows = [(n * 1000 + i, n) for i in range(600)]
            await db.insert_new(conn, provenance_index, ("band_key", "ref"), rows, "band_key, ref")

    await asyncio.gather(*(write(n) for n in range(8)))
    assert await count(db) == 8 * 600


async def test_a_burst_of_readers_opens_connections_once(db: Database) -> None:
    # Past SQLAlchemy's default five, connections were closed as they were handed back and
    # opened again at the next burst (a thread each for SQLite, a server process each for
    # PostgreSQL): twelve readers at a time, twice, open at most twelve, all at the first.
    opened: list[object] = []
    sa.event.listen(db.engine.sync_engine, "connect", lambda conn, _: opened.append(conn))
    held, all_in = asyncio.Event(), asyncio.Event()
    inside = 0

    async def read() -> None:
        nonlocal inside
        async with db.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
            inside += 1
            if inside == 12:
                all_in.set()
            await held.wait()

    first = 0
    for burst in range(2):
        readers = [asyncio.create_task(read()) for _ in range(12)]
        await asyncio.wait_for(all_in.wait(), 30)  # twelve connections out at once
        held.set()
        await asyncio.gather(*readers)
        held.clear()
        all_in.clear()
        inside = 0
        if burst == 0:
            first = len(opened)
    assert 0 < first <= 12
    assert len(opened) == first


async def test_sqlite_writes_go_through_one_connection_of_their_own(db: Database) -> None:
    async def driver_connection(conn: AsyncConnection) -> object:
        raw = await conn.get_raw_connection()
        return raw.driver_connection

    writers: set[int] = set()
    for n in range(3):
        async with db.begin_write() as conn:
            writers.add(id(await driver_connection(conn)))
            await db.insert_new(conn, provenance_index, ("band_key", "ref"), [(n, n)])
    async with db.engine.connect() as conn:
        reader = id(await driver_connection(conn))
    assert await count(db) == 3
    if db.is_sqlite:
        assert len(writers) == 1
        assert reader not in writers


def test_a_statement_is_built_once_per_key() -> None:
    db = Database("sqlite://")
    built: list[str] = []

    def build(text: str) -> sa.TextClause:
        built.append(text)
        return sa.text(text)

    first = db.statement(("q", 1), lambda: build("SELECT 1"))
    assert db.statement(("q", 1), lambda: build("SELECT 1")) is first
    assert db.statement(("q", 2), lambda: build("SELECT 2")) is not first
    assert built == ["SELECT 1", "SELECT 2"]
