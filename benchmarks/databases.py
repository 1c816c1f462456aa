"""A throw-away PostgreSQL database for a benchmark run."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from modelgrid.storage.database import async_url


@contextlib.asynccontextmanager
async def fresh_postgres(server: str, label: str) -> AsyncIterator[str | None]:
    """A new PostgreSQL database on ``server``, dropped afterwards; None if unreachable."""
    admin = make_url(server)
    name = f"modelgrid_bench_{label}_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(
        async_url(admin.render_as_string(hide_password=False)), isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except (OSError, sa.exc.SQLAlchemyError):
        await engine.dispose()
        yield None
        return
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        async with engine.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await engine.dispose()


@contextlib.asynccontextmanager
async def fresh_postgres_pair(
    server: str, labels: tuple[str, str]
) -> AsyncIterator[tuple[str, str] | None]:
    """Two new databases on ``server``, for a benchmark's two variants side by side; None if
    unreachable."""
    async with (
        fresh_postgres(server, labels[0]) as first,
        fresh_postgres(server, labels[1]) as second,
    ):
        yield None if first is None or second is None else (first, second)
