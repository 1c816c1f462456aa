"""Statements and usage exports end to end: a real server whose housekeeping rolls up and prunes
an older month at start-up, real billed requests this month, the admin API and the CLI."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from modelgrid.storage.database import Database
from modelgrid.storage.ledger import Ledger
from modelgrid.storage.orgs import OrgStore
from modelgrid.storage.tables import credit_grants

from .services import Server, run_server
from .storage.test_ledger import entry

MODEL = "smollm2-135m-instruct"
C = 1_000_000
CONFIG = f"""
ledger_retention_days = 1

[plans.paid]
billed = true

[models.{MODEL}]
n_ctx = 512
prices = {{ input = 2.0, output = 8.0 }}
"""
NOW = datetime.now(UTC)
THIS_MONTH = NOW.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
# Two months back: whole days older than the one-day retention, whatever today is.
OLD = (THIS_MONTH - timedelta(days=32)).replace(day=1)
OLD_MONTH, MONTH = f"{OLD:%Y-%m}", f"{NOW:%Y-%m}"
DAY = timedelta(days=1)


async def seed(url: str, journal: Path) -> None:
    """acme's history before the server starts: 8 credits at OLD's start, 4.5 granted in that
    month, 1.85 charged (1.75 on the model, 0.1 on another), so 10.65 at its end."""
    db = Database(url)
    try:
        await db.migrate()
        org = await OrgStore(db).ensure("acme", "paid", "free")
        account = f"org:{org.id}"
        grants = [
            ("starting", 10 * C, OLD - 5 * DAY),
            ("topup", 4 * C, OLD + DAY),
            ("code", C, OLD + 2 * DAY),
            ("adjustment", -C // 2, OLD + 3 * DAY),
        ]
        async with db.engine.begin() as conn:
            for kind, amount, at in grants:
                await conn.execute(
                    credit_grants.insert().values(
                        account=account, amount=amount, kind=kind, created_at=at
                    )
                )
        book = Ledger(db, journal, flush_interval=3600)
        await book.start()
        for e in [
            entry("before", account=account, at=OLD - DAY, model=MODEL, charge=2 * C),
            entry("old-1", account=account, at=OLD + 4 * DAY, model=MODEL, charge=1_500_000),
            entry("old-2", account=account, at=OLD + 9 * DAY, model=MODEL, charge=250_000),
            entry("old-3", account=account, at=OLD + 9 * DAY, model="retired", charge=100_000),
        ]:
            book.append(e)
        await book.close()
    finally:
        await db.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("statements")
    env: dict[str, str] = {}
    url = f"sqlite:///{tmp / 'data' / 'modelgrid.db'}"
    if request.param == "postgres":
        url = env["MODELGRID_DATABASE_URL"] = request.getfixturevalue("module_postgres_url")
    asyncio.run(seed(url, tmp / "seed-journal"))
    with run_server(tmp, CONFIG, (), **env) as running:
        yield running


def get(server: Server, path: str, key: str | None = None, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or server.admin_key}"}
    return httpx.get(f"{server.url}/admin/v1{path}", params=params, headers=headers, timeout=30)


def new_key(server: Server, org: str, role: str = "user") -> str:
    body = {"org": org, "role": role}
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    r = httpx.post(f"{server.url}/admin/v1/keys", json=body, headers=headers)
    assert r.status_code == 201, r.text
    key: str = r.json()["key"]
    return key


def test_an_old_month_is_whole_after_its_entries_are_pruned(server: Server) -> None:
    deadline = time.monotonic() + 30
    while get(server, "/orgs/acme/ledger", since=OLD.isoformat()).json()["data"]:
        assert time.monotonic() < deadline, "the server's housekeeping never pruned"
        time.sleep(0.2)
    r = get(server, f"/orgs/acme/statements/{OLD_MONTH}")
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["opening_balance"] == 8.0
    assert found["credits"] == {"starting": 0.0, "topup": 4.0, "code": 1.0, "adjustment": -0.5}
    assert found["credited"] == 4.5
    assert found["models"][MODEL]["requests"] == 2 and found["models"][MODEL]["charged"] == 1.75
    assert found["models"]["retired"]["charged"] == 0.1
    assert found["charged"] == pytest.approx(1.85)
    assert found["closing_balance"] == pytest.approx(10.65)
    assert found["from"] == OLD.isoformat()

    window = {"since": OLD.isoformat(), "until": (OLD + 20 * DAY).isoformat(), "format": "json"}
    assert get(server, "/orgs/acme/usage/export", **window).json() == []  # entries pruned
    hours = get(server, "/orgs/acme/usage/export", granularity="hour", **window).json()
    assert sorted((h["hour"], h["model"], h["requests"], h["charged"]) for h in hours) == [
        ((OLD + 4 * DAY).isoformat(), MODEL, 1, 1.5),
        ((OLD + 9 * DAY).isoformat(), "retired", 1, 0.1),
        ((OLD + 9 * DAY).isoformat(), MODEL, 1, 0.25),
    ]


def test_this_months_statement_and_export_through_the_api_and_the_cli(
    server: Server, tmp_path: Path
) -> None:
    key = new_key(server, "acme")
    topped = httpx.post(
        f"{server.url}/admin/v1/orgs/acme/credits",
        json={"amount": 10, "note": "invoice 1"},
        headers={"Authorization": f"Bearer {server.admin_key}"},
    )
    assert topped.status_code == 201, topped.text
    ids = []
    for prompt in ("Hi", "Count to three."):
        r = httpx.post(
            f"{server.base_url}/chat/completions",
            json={
                "model": MODEL,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": 8,
            },
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        ids.append(r.headers["x-request-id"])
    entries = get(server, "/orgs/acme/ledger").json()["data"]
    assert sorted(e["request_id"] for e in entries) == sorted(ids)
    charged = sum(e["charged"] for e in entries)
    assert charged > 0

    statement = get(server, f"/orgs/acme/statements/{MONTH}").json()
    assert statement["opening_balance"] == pytest.approx(10.65)  # the old month's closing
    assert statement["credits"]["topup"] == 10.0 and statement["credited"] == 10.0
    assert statement["models"][MODEL]["requests"] == 2
    assert statement["charged"] == pytest.approx(charged)
    closing = statement["closing_balance"]
    assert closing == pytest.approx(10.65 + 10 - charged)
    assert closing == pytest.approx(get(server, "/orgs/acme/usage").json()["balance"])

    as_json = get(server, "/orgs/acme/usage/export", format="json").json()
    assert [e["request_id"] for e in as_json] == [e["request_id"] for e in reversed(entries)]
    r = get(server, "/orgs/acme/usage/export")  # CSV by default
    assert r.headers["content-type"].startswith("text/csv")
    assert 'filename="usage-acme-' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["request_id"], float(x["charged"])) for x in rows] == [
        (e["request_id"], e["charged"]) for e in as_json
    ]

    # The CLI reads the database directly and agrees.
    cli = server.cli("statement", "--org", "acme", "--month", MONTH, "--json")
    assert orjson.loads(cli.stdout) == statement
    text = server.cli("statement", "--org", "acme", "--month", MONTH).stdout
    assert f"closing balance  {closing:>16.6f}" in text and MODEL in text
    assert orjson.loads(server.cli("export", "--org", "acme", "--format", "json").stdout) == as_json
    out = tmp_path / "usage.csv"
    server.cli("export", "--org", "acme", "--output", str(out))
    assert out.read_text() == r.text
    hourly = orjson.loads(
        server.cli("export", "--org", "acme", "--format", "json", "--granularity", "hour").stdout
    )
    assert sum(h["requests"] for h in hourly) == 2
    failed = server.cli("statement", "--org", "acme", "--month", "2026-13", check=False)
    assert failed.returncode != 0 and "YYYY-MM" in failed.stderr


def test_who_may_read_statements_and_exports(server: Server) -> None:
    own = new_key(server, "globex", role="org_admin")
    assert get(server, f"/orgs/globex/statements/{MONTH}", own).status_code == 200
    assert get(server, "/orgs/globex/usage/export", own).status_code == 200
    for path in (f"/orgs/acme/statements/{MONTH}", "/orgs/acme/usage/export"):
        assert get(server, path, own).status_code == 404  # another organisation's
        assert get(server, path, new_key(server, "globex")).status_code in (401, 403)
    bad = get(server, "/orgs/acme/statements/2026-1")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "month"
    for params in ({"format": "xml"}, {"granularity": "day"}, {"since": "yesterday"}):
        r = get(server, "/orgs/acme/usage/export", **params)
        assert r.status_code == 400 and r.json()["error"]["param"] == next(iter(params))
