"""Two replicas on one PostgreSQL database and one Redis: a quota holds across them, a
revoked key fails on both within a second, and each response's usage is its ledger entry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from .services import Server, run_server

CONFIG = """
[plans.free]
requests_per_minute = 0
max_concurrency = 0
tokens_per_minute = 0
daily_tokens = 400
max_tokens = 4

[models.smollm2-135m-instruct]
n_ctx = 512
queue_size = 64
"""
BODY = {"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture
def replicas(tmp_path: Path, postgres_url: str, redis_url: str) -> Iterator[list[Server]]:
    env = {"MODELGRID_DATABASE_URL": postgres_url, "MODELGRID_REDIS_URL": redis_url}
    with ExitStack() as stack:
        yield [stack.enter_context(run_server(tmp_path / n, CONFIG, (), **env)) for n in "ab"]


def test_a_quota_holds_across_replicas(replicas: list[Server]) -> None:
    a, b = replicas
    admin = {"Authorization": f"Bearer {a.admin_key}"}
    key = httpx.post(f"{a.url}/admin/v1/keys", json={"org": "shared"}, headers=admin).json()["key"]
    headers = {"Authorization": f"Bearer {key}"}

    def ask(i: int) -> httpx.Response:
        server = replicas[i % 2]
        return httpx.post(
            f"{server.base_url}/chat/completions", json=BODY, headers=headers, timeout=60
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(ask, range(60)))
    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert served and refused and len(served) + len(refused) == 60
    assert {r.json()["error"]["code"] for r in refused} == {"insufficient_quota"}
    usage = {r.headers["x-request-id"]: r.json()["usage"]["total_tokens"] for r in served}
    assert sum(usage.values()) <= 400  # not 400 on each replica
    # Each replica commits its entries once a second: within two, b sees a's too.
    deadline = time.monotonic() + 3
    while True:
        entries = httpx.get(
            f"{b.url}/admin/v1/orgs/shared/ledger", params={"limit": 1000}, headers=admin
        ).json()["data"]
        found = {e["request_id"]: e["tokens_in"] + e["tokens_out"] for e in entries}
        if found == usage or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert found == usage


def test_a_revoked_key_fails_on_every_replica_at_its_next_change_read(
    replicas: list[Server],
) -> None:
    """Both replicas hold the key in a cache that lives for minutes; the database's change
    feed, read each second, ends it early on both (not only on the replica that revoked)."""
    a, b = replicas
    admin = {"Authorization": f"Bearer {a.admin_key}"}
    created = httpx.post(f"{a.url}/admin/v1/keys", json={"name": "r"}, headers=admin).json()
    headers = {"Authorization": f"Bearer {created['key']}"}
    for server in replicas:  # cached as valid on both
        assert httpx.get(f"{server.base_url}/models", headers=headers).status_code == 200
    revoked = httpx.delete(f"{b.url}/admin/v1/keys/{created['prefix']}", headers=admin)
    assert revoked.status_code == 200
    for server in replicas:
        # change_poll_seconds is 1: a few reads' worth of slack for a loaded machine.
        deadline = time.monotonic() + 5
        while httpx.get(f"{server.base_url}/models", headers=headers).status_code != 401:
            assert time.monotonic() < deadline, f"{server.url} still takes the revoked key"
            time.sleep(0.05)
