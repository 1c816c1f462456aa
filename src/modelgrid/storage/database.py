"""The database: one async SQLAlchemy engine, migrated to the newest schema at start-up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

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
    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: AsyncEngine = create_async_engine(async_url(url), pool_pre_ping=True)
        if self.is_sqlite:
            sa.event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._writer = asyncio.Lock()

    async def migrate(self) -> None:
        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                await conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        await self.engine.dispose()

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
        async with self._writer, self.engine.begin() as conn:
            yield conn

    async def insert_new(
        self,
        conn: AsyncConnection,
        table: sa.Table,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]] | npt.NDArray[np.int64],
        unique: str | None = None,
    ) -> None:
        """Insert ``rows`` (tuples in ``columns``' order) straight through the driver (asyncpg's
        executemany, SQLite's multi-row VALUES); with ``unique``, skipping any whose
        ``unique`` column is already taken.

        SQLAlchemy's own insert processes every parameter of every row in Python (about
        35 µs a ledger entry); the drivers take tuples as they are. The one conversion that
        processing did for us is SQLite's: a datetime becomes the text SQLAlchemy stores.
        ``rows`` may be an integer array, a row of it each (the provenance index's): its
        values reach the driver through ``tolist``, never a Python tuple a row."""
        names = ", ".join(columns)
        conflict = "" if unique is None else f" ON CONFLICT ({unique}) DO NOTHING"
        if not self.is_sqlite:
            marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
            sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks}){conflict}"
            listed = rows.tolist() if isinstance(rows, np.ndarray) else rows
            await conn.exec_driver_sql(sql, [tuple(row) for row in listed])
            return
        times = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, sa.DateTime)]
        if times and not isinstance(rows, np.ndarray):
            rows = [_sqlite_times(row, times) for row in rows]
        # Many rows to a statement: sqlite3's executemany steps once a row, and each step
        # hands the GIL back and forth with the busy event loop; a flush of 30,000 index rows
        # took seconds under load that way (docs/benchmarks.md).
        per = max(1, min(_SQLITE_ROWS, _SQLITE_VARIABLES // len(columns)))
        one = "(" + ", ".join("?" * len(columns)) + ")"
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            values = ", ".join([one] * len(chunk))
            sql = f"INSERT INTO {table.name} ({names}) VALUES {values}{conflict}"
            flat = (
                tuple(chunk.ravel().tolist())
                if isinstance(chunk, np.ndarray)
                else tuple(v for row in chunk for v in row)
            )
            await conn.exec_driver_sql(sql, flat)


_SQLITE_ROWS = 500  # rows a statement
_SQLITE_VARIABLES = 32_000  # under SQLite's limit on parameters a statement (32,766)


def _sqlite_times(row: Sequence[Any], times: Sequence[int]) -> tuple[Any, ...]:
    """``row`` with its datetimes as SQLAlchemy's SQLite ``DateTime`` stores them: the UTC
    wall-clock digits as text, offset dropped, so raw and ORM-written rows compare alike.
    (isoformat is about ten times quicker than strftime.)"""
    out = list(row)
    for i in times:
        value = out[i]
        if isinstance(value, datetime):
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
