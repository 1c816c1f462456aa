"""The database: one async SQLAlchemy engine, migrated to the newest schema at start-up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.expression import Executable

# Any number constant to all replicas: they take this lock so only one migrates at a time.
_MIGRATION_LOCK = 7_245_118_003


def async_url(url: str) -> str:
    """Map a user's ``sqlite:///`` or ``postgresql://`` URL to the async driver we ship."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL {parsed.drivername!r}: use sqlite or postgresql")


class Database:
    def __init__(self, url: str, pool_size: int = 16) -> None:
        """``pool_size``: connections kept open, and opened past them at the busiest moments
        (closed once handed back)."""
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # sqlite3 keeps a connection's last 128 statements prepared, and a multi-row insert
        # (_sqlite_insert) of hundreds of rows is hundreds of kilobytes prepared: batches of
        # every size filled the cache to about 60 MB a connection (docs/benchmarks.md, memory
        # under load). Fewer kept bounds that; the inserts are prepared afresh either way.
        connect_args = {"cached_statements": _SQLITE_STATEMENTS} if self.is_sqlite else {}
        self.in_memory = in_memory = self.is_sqlite and parsed.database in (None, "", ":memory:")
        # SQLAlchemy's default pool keeps 5 connections and closes any opened past them when
        # it is handed back. Under load with many keys, each key's and account's cache
        # renewal reads at a moment of its own, a dozen at once: with 5 kept, about 17
        # connections a second were opened and closed (for SQLite a thread each, for
        # PostgreSQL a server process), and each thread's allocations, freed in the middle
        # of the heap when it ended, grew the resident set (docs/benchmarks.md, memory under
        # load). A file database does not drop connections: SQLite's are not pinged.
        pool = {} if in_memory else {"pool_size": pool_size, "max_overflow": pool_size}
        self.engine: AsyncEngine = create_async_engine(
            async_url(url), pool_pre_ping=not self.is_sqlite, connect_args=connect_args, **pool
        )
        # SQLite has one writer at a time, so its writes go through one connection of their
        # own: the batched inserts' large statements are prepared there, not in every
        # reader's cache.
        self._writes = self.engine
        if self.is_sqlite and not in_memory:
            self._writes = create_async_engine(
                async_url(url), connect_args=connect_args, pool_size=1, max_overflow=0
            )
        if self.is_sqlite:
            for engine in {self.engine, self._writes}:
                sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        self._writer = asyncio.Lock()
        self._statements: dict[Hashable, Executable] = {}

    async def migrate(self) -> None:
        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                await conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
            await conn.run_sync(_upgrade)

    def statement(self, key: Hashable, build: Callable[[], Executable]) -> Executable:
        """The statement ``build`` makes, made once per ``key`` and kept: for queries whose
        construction (SQLAlchemy's objects, and its cache key computed from them) costs more
        than running them. Its values go in as bound parameters."""
        made = self._statements.get(key)
        if made is None:
            made = self._statements[key] = build()
        return made

    async def close(self) -> None:
        await self.engine.dispose()
        if self._writes is not self.engine:
            await self._writes.dispose()

    @contextlib.asynccontextmanager
    async def begin_write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that writes. SQLite has one writer at a time: this process's writers
        (the batched ones, ledger, audit log, stored conversations, review queue, and the rare
        ones, keys, organisations, overrides, codes, roll-ups, knowledge) take turns here, not
        in SQLite's busy handler, which sleeps up to 100 ms between tries. Under load they
        had each waited over a second for one another (docs/benchmarks.md). Not reentrant:
        never nest one in another."""
        if not self.is_sqlite:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._writer, self._writes.begin() as conn:
            yield conn

    async def insert_new(
        self,
        conn: AsyncConnection,
        table: sa.Table,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        unique: str | None = None,
    ) -> None:
        """Insert ``rows`` (tuples in ``columns``' order) straight through the driver (asyncpg's
        executemany, SQLite's multi-row VALUES); with ``unique``, skipping any whose
        ``unique`` column is already taken.

        SQLAlchemy's own insert processes every parameter of every row in Python (about
        35 µs a ledger entry); the drivers take tuples as they are. The one conversion that
        processing did for us is SQLite's: a datetime becomes the text SQLAlchemy stores."""
        if not self.is_sqlite:
            await conn.exec_driver_sql(
                _postgres_insert(table, columns, unique), list(map(tuple, rows))
            )
            return
        times = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, sa.DateTime)]
        per = _rows_a_statement(len(columns))
        # A statement's rows at a time, each statement awaited: a batch of thousands converted
        # in one go held the event loop for milliseconds, every request in flight with it.
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            if times:
                chunk = [_sqlite_times(row, times) for row in chunk]
            await self._sqlite_insert(
                conn, table, columns, list(chain.from_iterable(chunk)), unique
            )

    async def insert_array(
        self,
        conn: AsyncConnection,
        table: sa.Table,
        columns: Sequence[str],
        rows: npt.NDArray[np.int64],
        unique: str | None = None,
    ) -> None:
        """``insert_new`` for integer rows given as an array (a row per line, a column per
        ``columns``): the provenance index's tens of thousands a flush.

        SQLite gets each statement's rows as one JSON text, which it unpacks itself
        (``json_each``) in C, outside the GIL. Bound one by one, the integers were converted
        in the driver's thread while it held the GIL, in the switch interval's turns against
        the requests in flight: this way, +6% throughput under load and p90 at concurrency 1
        1.16 → 0.92 ms (docs/benchmarks.md).

        PostgreSQL gets a ``bigint`` array a column, in one statement that unpacks them
        (``unnest``): as rows, asyncpg's executemany sent a bind and an execute a row, a
        quarter of the writer's time under sustained load; this way 0.6× the time and 0.3×
        the writer's CPU (docs/benchmarks.md)."""
        if not len(rows):
            return
        if not self.is_sqlite:
            arrays = await asyncio.to_thread(_columns, rows)
            await conn.exec_driver_sql(_postgres_unnest(table, columns, unique), arrays)
            return
        # "WHERE true": without a WHERE, SQLite would read ON CONFLICT as part of the join.
        sql = (
            f"INSERT INTO {table.name} ({', '.join(columns)}) {_json_rows(len(columns))} "
            f"WHERE true{_on_conflict(unique)}"
        )
        await _each_json_chunk(conn, sql, rows)

    async def delete_array(
        self,
        conn: AsyncConnection,
        table: sa.Table,
        columns: Sequence[str],
        rows: npt.NDArray[np.int64],
    ) -> None:
        """Delete the rows whose ``columns`` equal a row of ``rows`` (integers, a row per line):
        ``insert_array``'s way back, the rows unpacked by the database in the same way, found
        by the index whose leading columns are ``columns``.

        Retention deleted the provenance index's 32 rows a response one statement a row (a
        bind and an execute each on PostgreSQL, a step each on SQLite): a pruned response
        cost 193 µs on SQLite and 284 on PostgreSQL that way, 116 and 158 this way
        (docs/benchmarks.md)."""
        if not len(rows):
            return
        names = ", ".join(columns)
        if not self.is_sqlite:
            arrays = await asyncio.to_thread(_columns, rows)
            sql = f"DELETE FROM {table.name} WHERE ({names}) IN ({_unnest(len(columns))})"
            await conn.exec_driver_sql(sql, arrays)
            return
        sql = f"DELETE FROM {table.name} WHERE ({names}) IN ({_json_rows(len(columns))})"
        await _each_json_chunk(conn, sql, rows)

    async def _sqlite_insert(
        self,
        conn: AsyncConnection,
        table: sa.Table,
        columns: Sequence[str],
        values: list[Any],
        unique: str | None,
    ) -> None:
        # Many rows to a statement: sqlite3's executemany steps once a row, and each step
        # hands the GIL back and forth with the busy event loop; a flush of 30,000 index rows
        # took seconds under load that way (docs/benchmarks.md).
        names, width = ", ".join(columns), len(columns)
        per = _rows_a_statement(width)
        one = "(" + ", ".join("?" * width) + ")"
        for start in range(0, len(values), per * width):
            chunk = tuple(values[start : start + per * width])
            marks = ", ".join([one] * (len(chunk) // width))
            sql = f"INSERT INTO {table.name} ({names}) VALUES {marks}{_on_conflict(unique)}"
            await conn.exec_driver_sql(sql, chunk)


def _json_rows(width: int) -> str:
    """The rows of a JSON array of arrays given as the one parameter, unpacked by SQLite."""
    picks = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(width))
    return f"SELECT {picks} FROM json_each(?)"


async def _each_json_chunk(conn: AsyncConnection, sql: str, rows: npt.NDArray[np.int64]) -> None:
    """``sql`` (taking ``_json_rows``) run once for each chunk of ``rows``."""
    for start in range(0, len(rows), _JSON_ROWS):
        chunk = np.ascontiguousarray(rows[start : start + _JSON_ROWS])
        text = orjson.dumps(chunk, option=orjson.OPT_SERIALIZE_NUMPY).decode()
        await conn.exec_driver_sql(sql, (text,))


def _columns(rows: npt.NDArray[np.int64]) -> tuple[list[int], ...]:
    return tuple(rows[:, i].tolist() for i in range(rows.shape[1]))


def _rows_a_statement(width: int) -> int:
    return max(1, min(_SQLITE_ROWS, _SQLITE_VARIABLES // width))


def _postgres_insert(table: sa.Table, columns: Sequence[str], unique: str | None) -> str:
    marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks}){_on_conflict(unique)}"


def _postgres_unnest(table: sa.Table, columns: Sequence[str], unique: str | None) -> str:
    """One INSERT of any number of integer rows, given as a ``bigint`` array a column."""
    names = ", ".join(columns)
    return f"INSERT INTO {table.name} ({names}) {_unnest(len(columns))}{_on_conflict(unique)}"


def _unnest(width: int) -> str:
    """The rows of ``width`` ``bigint`` arrays given as parameters, unpacked by PostgreSQL."""
    arrays = ", ".join(f"${i}::bigint[]" for i in range(1, width + 1))
    return f"SELECT * FROM unnest({arrays})"


def _on_conflict(unique: str | None) -> str:
    return "" if unique is None else f" ON CONFLICT ({unique}) DO NOTHING"


_SQLITE_ROWS = 500  # rows a statement
_SQLITE_STATEMENTS = 32  # statements a SQLite connection keeps prepared
_SQLITE_VARIABLES = 32_000  # under SQLite's limit on parameters a statement (32,766)
_JSON_ROWS = 50_000  # rows a statement as JSON (about 2 MB of text)


def _sqlite_times(row: Sequence[Any], times: Sequence[int]) -> tuple[Any, ...]:
    """``row`` with its datetimes as SQLAlchemy's SQLite ``DateTime`` stores them: the UTC
    wall-clock digits as text, offset dropped, so raw and ORM-written rows compare alike.
    (isoformat is about ten times quicker than strftime.)"""
    out = list(row)
    for i in times:
        value = out[i]
        if isinstance(value, datetime):
            if value.tzinfo is UTC:  # nearly always: cut the "+00:00" off rather than convert
                out[i] = value.isoformat(" ", "microseconds")[:26]
                continue
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            out[i] = value.isoformat(" ", "microseconds")
    return tuple(out)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _upgrade(connection: sa.Connection) -> None:
    config = Config()
    config.set_main_option("script_location", "modelgrid:migrations")
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
