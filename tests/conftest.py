from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import openai
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from modelgrid.storage.database import Database, async_url

from .faults import FaultServer, fault_server
from .services import POSTGRES_URL, REDIS_URL, Server, require_service, run_server

# Small enough for fast tests, large enough for 8 concurrent requests to queue.
SERVER_CONFIG = """
max_body_bytes = 65536

[models.smollm2-135m-instruct]
n_ctx = 1024
queue_size = 16
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("server"), SERVER_CONFIG) as running:
        yield running


@pytest.fixture
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=server.admin_key, max_retries=0)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    require_service("PostgreSQL", POSTGRES_URL)
    name = f"modelgrid_test_{uuid.uuid4().hex[:12]}"
    admin = make_url(POSTGRES_URL)

    async def run(statement: str) -> None:
        engine = create_async_engine(
            async_url(str(admin.render_as_string(False))), isolation_level="AUTOCOMMIT"
        )
        async with engine.connect() as conn:
            await conn.execute(sa.text(statement))
        await engine.dispose()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def module_postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one module's server."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def module_redis_url() -> str:
    require_service("Redis", REDIS_URL)
    return REDIS_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'modelgrid.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A migrated database, SQLite and PostgreSQL in turn."""
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.close()


@pytest.fixture
def redis_url() -> str:
    """The Redis server the tests share (each test keeps to keys of its own)."""
    require_service("Redis", REDIS_URL)
    return REDIS_URL


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    """The fault-injecting OpenAI-compatible server (faults.py), one per test module."""
    with fault_server() as server:
        yield server
