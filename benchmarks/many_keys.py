"""Many callers, each calling now and then: what a key and its account cost the database.

A free tier is many keys with a few requests each, not one key with thousands. ModelGrid
caches a verified key and an account's credits granted; this benchmark serves the same load,
rotating over ``--keys`` organisations (one key each, a billed plan with limits and credits),
through two servers that differ in one thing:

- ``re-read``: each key and account read again from the database once its entry is a second
  old (``key_cache_seconds = 1``, ``change_poll_seconds = 0``), how ModelGrid worked before
  its change feed;
- ``change feed``: entries kept for minutes, and the database's change feed read once a second
  (the defaults).

Both run in front of the nginx mock under ``wrk`` at one concurrency, each with a database of
its own, SQLite and PostgreSQL in turn. First every key makes one request (the time that takes
is reported: a key's first request loads its account's quota counters from the ledger, once a
window whatever the caches), then the servers take turns for ``--rounds`` rounds. Reported:
requests a second, the server's CPU a request, and for PostgreSQL the database's transactions
a request (its own count, ``pg_stat_database``, which includes the batched writes of the
ledger, the audit log and the stored conversations, and the feed's reads).

Usage: ``python benchmarks/many_keys.py [--keys 2000] [--rounds 3] [--seconds 10]
[--concurrency 16] [--databases sqlite,postgresql]``. Needs nginx and wrk, and
PostgreSQL at ``MODELGRID_BENCH_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

# Run as a script, this file's folder is on sys.path but the repository root is not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.overhead import require_tools
from benchmarks.overhead_targets import (
    METERED_PLAN,
    Processes,
    request_body,
    start_mock,
    start_modelgrid,
    upstream_model,
)

from modelgrid.pricing import micro
from modelgrid.storage.database import Database, async_url
from modelgrid.storage.keys import KeyStore
from modelgrid.storage.orgs import OrgStore

ADMIN_KEY = "mg-keys-admin-0123456789"
POSTGRES = os.environ.get("MODELGRID_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
VARIANTS = {
    "re-read": "key_cache_seconds = 1.0\nchange_poll_seconds = 0\n",
    "change feed": "",
}


@dataclass
class Server:
    variant: str
    database: str
    url: str  # the database's
    keys: list[str] = field(default_factory=list)  # its organisations'
    base: str = ""
    procs: Processes = field(default_factory=Processes)
    requests: list[int] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    transactions: int | None = None  # the database's, over every round
    first_calls: float = 0.0  # seconds for one request with each key, before the rounds


async def admin_sql(statement: str) -> None:
    engine = create_async_engine(async_url(POSTGRES), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(sa.text(statement))
    await engine.dispose()


async def transactions(url: str) -> int:
    """Transactions the database has ended (committed or rolled back), by its own count."""
    engine = create_async_engine(async_url(POSTGRES))
    name = make_url(url).database
    query = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = :name"
    async with engine.connect() as conn:
        count = (await conn.execute(sa.text(query), {"name": name})).scalar_one()
    await engine.dispose()
    return int(count)


async def populate(url: str, count: int) -> list[str]:
    """``count`` organisations on the billed plan, with credits, and a key each."""
    db = Database(url)
    await db.migrate()
    orgs, keys = OrgStore(db), KeyStore(db)
    made = []
    for n in range(count):
        org = await orgs.ensure(f"bench-{n}", None, "free", starting_credits=micro(1e9))
        made.append(await keys.create(name=f"bench-{n}", org_id=org.id))
    await db.close()
    return made


def config(workdir: Path, origin: str, url: str, variant: str) -> Path:
    path = workdir / "modelgrid.toml"
    path.write_text(
        f'host = "127.0.0.1"\ndata_dir = {json.dumps(str(workdir / "data"))}\n'
        f"database_url = {json.dumps(url)}\n{VARIANTS[variant]}"
        + METERED_PLAN
        + upstream_model("m", origin + "/v1")
    )
    return path


async def first_calls(server: Server, concurrency: int) -> float:
    """One request with each key, ``concurrency`` at a time; the seconds it took. (aiohttp's
    client, not httpx's: at concurrency 16 httpx's own pool, not the server, set the pace.)"""
    gate = asyncio.Semaphore(concurrency)
    body = request_body("m").encode()

    async def call(client: aiohttp.ClientSession, key: str) -> None:
        async with gate:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            url = f"{server.base}/chat/completions"
            async with client.post(url, data=body, headers=headers) as r:
                if r.status != 200:
                    raise SystemExit(f"{server.variant}: {r.status} {(await r.text())[:300]}")
                await r.read()

    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as client:
        await asyncio.gather(*(call(client, key) for key in server.keys))
    return time.perf_counter() - started


def wrk_script(path: Path, keys: list[str]) -> None:
    """Each request takes the next key, so each key calls once every len(keys) requests."""
    path.write_text(
        f"local keys = {{{', '.join(json.dumps(k) for k in keys)}}}\n"
        f"local body = {json.dumps(request_body('m'))}\n"
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        "  local headers = {}\n"
        '  headers["Content-Type"] = "application/json"\n'
        '  headers["Authorization"] = "Bearer " .. keys[n % #keys + 1]\n'
        '  return wrk.format("POST", nil, headers, body)\n'
        "end\n"
    )


def run_wrk(wrk: str, server: Server, lua: Path, conc: int, seconds: int) -> None:
    cpu = server.procs.cpu_seconds()
    url = server.base + "/chat/completions"
    cmd = [wrk, "-t1", f"-c{conc}", f"-d{seconds}s", "--timeout", "10s", "-s", str(lua), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    used = server.procs.cpu_seconds()
    count = re.search(r"^\s*(\d+) requests in", out, re.M)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    if count is None or rate is None:
        raise SystemExit("could not read wrk's output:\n" + out)
    if re.search(r"Non-2xx or 3xx responses|Socket errors", out):
        raise SystemExit(f"{server.variant} on {server.database} failed requests:\n{out}")
    server.requests.append(int(count[1]))
    server.rates.append(float(rate[1]))
    if cpu is not None and used is not None:
        server.cpu_us.append((used - cpu) / int(count[1]) * 1e6)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=2000, help="organisations, one key each")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10, help="seconds a run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    nginx, wrk = require_tools()
    databases = args.databases.split(",")
    mock = Processes()
    servers: list[Server] = []
    dropped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="modelgrid-keys-") as tmp:
        root = Path(tmp)
        try:
            (root / "mock").mkdir()
            origin = start_mock(nginx, root / "mock", mock)
            lua = root / "keys.lua"
            for database in databases:
                for variant in VARIANTS:
                    workdir = root / f"{database}-{variant.replace(' ', '-')}"
                    workdir.mkdir()
                    if database == "sqlite":
                        url = f"sqlite:///{workdir / 'modelgrid.db'}"
                    else:
                        name = f"modelgrid_bench_{uuid.uuid4().hex[:12]}"
                        asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
                        dropped.append(name)
                        url = make_url(POSTGRES).set(database=name).render_as_string(False)
                    print(f"{database}, {variant}: {args.keys:,} keys", file=sys.stderr)
                    server = Server(variant, database, url, asyncio.run(populate(url, args.keys)))
                    path = config(workdir, origin, url, variant)
                    server.base = start_modelgrid(
                        server.procs, path, ADMIN_KEY, workdir / "modelgrid.log"
                    )
                    servers.append(server)
            # Every key's first request loads its account's quota counters from the ledger
            # (once a window, whatever the caches): a warm-up, not counted, so the rounds
            # measure the steady state.
            for server in servers:
                server.first_calls = asyncio.run(first_calls(server, args.concurrency))
                print(
                    f"{server.database}, {server.variant}: every key's first request, "
                    f"{server.first_calls:.2f} s",
                    file=sys.stderr,
                )
            time.sleep(11)  # see below
            before = {s.url: asyncio.run(transactions(s.url)) for s in servers if is_pg(s)}
            for n in range(args.rounds):
                for server in servers:
                    wrk_script(lua, server.keys)
                    run_wrk(wrk, server, lua, args.concurrency, args.seconds)
                    print(
                        f"round {n + 1}, {server.database}, {server.variant}: "
                        f"{server.rates[-1]:,.0f} req/s",
                        file=sys.stderr,
                    )
            # PostgreSQL adds an idle connection's counts to its statistics within 10 s.
            time.sleep(11)
            for server in servers:
                if is_pg(server):
                    server.transactions = asyncio.run(transactions(server.url)) - before[server.url]
        finally:
            for server in servers:
                server.procs.stop()
            mock.stop()
            for name in dropped:
                asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    report(servers, args)
    return 0


def is_pg(server: Server) -> bool:
    return server.database == "postgresql"


def report(servers: list[Server], args: argparse.Namespace) -> None:
    print(
        f"\n{args.keys:,} keys, concurrency {args.concurrency}, {args.rounds} rounds of "
        f"{args.seconds} s (medians)\n"
    )
    print("| database | caches | first requests, s | req/s | CPU µs/req | DB transactions/req |")
    print("| --- | --- | --- | --- | --- | --- |")
    for s in servers:
        tx = "" if s.transactions is None else f"{s.transactions / sum(s.requests):.3f}"
        cpu = f"{statistics.median(s.cpu_us):,.0f}" if s.cpu_us else ""
        rate = f"{statistics.median(s.rates):,.0f}"
        print(f"| {s.database} | {s.variant} | {s.first_calls:.2f} | {rate} | {cpu} | {tx} |")
    for database in dict.fromkeys(s.database for s in servers):
        pair = {s.variant: s for s in servers if s.database == database}
        if len(pair) == 2:
            ratios = [
                new / old
                for new, old in zip(pair["change feed"].rates, pair["re-read"].rates, strict=True)
            ]
            print(
                f"\n{database}: change feed against re-read, throughput "
                f"{statistics.median(ratios):.2f}× (per round: "
                + ", ".join(f"{r:.2f}×" for r in ratios)
                + ")"
            )


if __name__ == "__main__":
    raise SystemExit(main())
