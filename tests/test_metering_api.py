"""Metering end to end: a real server, the embedded model, the official client."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from modelgrid.pricing import Price, charge, list_price
from modelgrid.settings import PriceSettings

from .services import Server, run_server

MODEL = "smollm2-135m-instruct"
PRICES = PriceSettings(input=2.0, output=8.0)
CONFIG = f"""
starting_credits = 0.003

[plans.free]
daily_tokens = 1000
max_tokens = 16

[plans.paid]
billed = true
price_multiplier = 1.5

[models.{MODEL}]
n_ctx = 512
queue_size = 64
prices = {{ input = {PRICES.input}, output = {PRICES.output} }}
"""


@pytest.fixture(scope="module", params=["sqlite-memory", "postgres-redis"])
def metered(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    env: dict[str, str] = {}
    if request.param == "postgres-redis":
        env["MODELGRID_DATABASE_URL"] = request.getfixturevalue("module_postgres_url")
        env["MODELGRID_REDIS_URL"] = request.getfixturevalue("module_redis_url")
    with run_server(tmp_path_factory.mktemp("metered"), CONFIG, (), **env) as running:
        yield running


def admin(server: Server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_key}"}


def new_key(server: Server, org: str, plan: str) -> str:
    body = {"org": org, "plan": plan}
    r = httpx.post(f"{server.url}/admin/v1/keys", json=body, headers=admin(server))
    assert r.status_code == 201, r.text
    key: str = r.json()["key"]
    return key


def ledger(server: Server, org: str) -> dict[str, dict[str, Any]]:
    r = httpx.get(
        f"{server.url}/admin/v1/orgs/{org}/ledger", params={"limit": 1000}, headers=admin(server)
    )
    assert r.status_code == 200, r.text
    return {e["request_id"]: e for e in r.json()["data"]}


def test_quota_holds_under_concurrency_and_usage_matches_the_ledger(metered: Server) -> None:
    client = openai.OpenAI(
        base_url=metered.base_url, api_key=new_key(metered, "quota-org", "free"), max_retries=0
    )

    def ask(i: int) -> tuple[str, int] | str:
        try:
            raw = client.chat.completions.with_raw_response.create(
                model=MODEL, messages=[{"role": "user", "content": f"Count to {i}."}]
            )
        except openai.RateLimitError as exc:
            return str(exc.code)
        reply = raw.parse()
        assert reply.usage is not None and reply.usage.completion_tokens <= 16  # the plan's cap
        return raw.headers["x-request-id"], reply.usage.total_tokens

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(ask, range(80)))
    served = [r for r in results if isinstance(r, tuple)]
    refused = [r for r in results if isinstance(r, str)]
    assert served and refused and set(refused) == {"insufficient_quota"}
    entries = ledger(metered, "quota-org")
    assert len(entries) == len(served)
    for request_id, total in served:  # every response's usage is its ledger entry
        assert entries[request_id]["tokens_in"] + entries[request_id]["tokens_out"] == total
    assert sum(total for _, total in served) <= 1000
    usage = metered.cli("usage", "--org", "quota-org", "--json").stdout
    assert f'"requests":{len(served)}' in usage


def test_billed_requests_are_charged_at_the_price_and_refused_without_credits(
    metered: Server,
) -> None:
    key = new_key(metered, "paid-org", "paid")
    client = openai.OpenAI(base_url=metered.base_url, api_key=key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=8
    )
    reply = raw.parse()
    assert reply.usage is not None
    entry = ledger(metered, "paid-org")[raw.headers["x-request-id"]]
    price = Price.from_settings(PRICES)
    tokens = (reply.usage.prompt_tokens, 0, reply.usage.completion_tokens)
    assert entry["charged"] * 1_000_000 == pytest.approx(charge(price, *tokens, 1.5))
    assert entry["list_price"] * 1_000_000 == pytest.approx(list_price(price, *tokens))
    usage = httpx.get(f"{metered.url}/admin/v1/orgs/paid-org/usage", headers=admin(metered))
    assert usage.json()["balance"] == pytest.approx(0.003 - entry["charged"])  # starting credits
    # A request that could cost more than the balance is refused before it runs.
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=400
        )
    assert refused.value.code == "insufficient_quota"
    topped = httpx.post(
        f"{metered.url}/admin/v1/orgs/paid-org/credits", json={"amount": 10}, headers=admin(metered)
    )
    assert topped.status_code == 201
    assert client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=400
    ).choices


def test_a_disconnect_mid_stream_is_charged_for_the_tokens_generated(metered: Server) -> None:
    key = new_key(metered, "stream-org", "paid")
    httpx.post(
        f"{metered.url}/admin/v1/orgs/stream-org/credits",
        json={"amount": 5},
        headers=admin(metered),
    )
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Write a long story about a dragon."}],
        # As many as the context leaves (the story runs past them): the longer the answer,
        # the surer the client's leaving is seen before it ends, on a loaded machine too.
        "max_tokens": 450,
        "stream": True,
        "temperature": 0,
    }
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.stream(
        "POST", f"{metered.base_url}/chat/completions", json=body, headers=headers
    ) as response:
        request_id = response.headers["x-request-id"]
        received = 0
        for line in response.iter_lines():
            if line.startswith("data: {") and re.search(r'"content":"[^"]', line):
                received += 1  # a token's text (the opening chunk carries the role only)
            if received == 5:
                break  # leave mid-stream
    deadline = time.monotonic() + 10
    while (entry := ledger(metered, "stream-org").get(request_id)) is None:
        assert time.monotonic() < deadline, "the cut-off stream was never settled"
        time.sleep(0.1)
    assert entry["outcome"] == "cancelled", entry  # the entry says how far it went
    assert 5 <= entry["tokens_out"] < 450
    price = Price.from_settings(PRICES)
    expected = charge(price, entry["tokens_in"], 0, entry["tokens_out"], 1.5)
    assert entry["charged"] * 1_000_000 == pytest.approx(expected)


def test_quota_settings_refuse_workers_without_redis(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text(CONFIG)
    from modelgrid.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="needs redis_url"):
        load_settings(tmp_path / "m.toml", env={}, overrides={"workers": 2})
