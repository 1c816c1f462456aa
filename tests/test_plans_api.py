"""Plans and prices set through the admin API and the CLI, applied without a restart."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from .services import Server, run_server

CONFIG = "[models.smollm2-135m-instruct]\nn_ctx = 512\n"
MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def plans_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("plans"), CONFIG) as running:
        yield running


def test_a_plan_set_through_the_api_applies_at_once(plans_server: Server) -> None:
    url, operator = (
        f"{plans_server.url}/admin/v1",
        {"Authorization": f"Bearer {plans_server.admin_key}"},
    )
    r = httpx.put(f"{url}/plans/tiny", json={"requests_per_minute": 2}, headers=operator)
    assert r.status_code == 200 and r.json()["requests_per_minute"] == 2
    assert "tiny" in {p["name"] for p in httpx.get(f"{url}/plans", headers=operator).json()["data"]}
    key = httpx.post(
        f"{url}/keys", json={"org": "small-co", "plan": "tiny"}, headers=operator
    ).json()["key"]
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    statuses = [
        httpx.post(
            f"{plans_server.base_url}/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    bad = httpx.put(f"{url}/plans/odd", json={"daily_tokens": -1}, headers=operator)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "daily_tokens"
    bad = httpx.put(f"{url}/plans/odd", json={"degrade_to": "nope"}, headers=operator)
    assert bad.status_code == 400
    assert httpx.delete(f"{url}/plans/tiny", headers=operator).status_code == 200
    assert httpx.delete(f"{url}/plans/tiny", headers=operator).status_code == 404


def test_prices_set_through_the_api_and_the_cli(plans_server: Server) -> None:
    url, operator = (
        f"{plans_server.url}/admin/v1",
        {"Authorization": f"Bearer {plans_server.admin_key}"},
    )
    r = httpx.put(f"{url}/prices/{MODEL}", json={"input": 0.5, "output": 2.0}, headers=operator)
    assert r.status_code == 200
    listed = httpx.get(f"{url}/prices", headers=operator).json()["data"]
    assert {p["model"]: (p["input"], p["output"]) for p in listed} == {MODEL: (0.5, 2.0)}
    assert httpx.put(f"{url}/prices/nope", json={"input": 1}, headers=operator).status_code == 404
    user = httpx.post(f"{url}/keys", json={"name": "u"}, headers=operator).json()["key"]
    assert (
        httpx.get(f"{url}/prices", headers={"Authorization": f"Bearer {user}"}).status_code == 403
    )
    plans_server.cli("prices", "set", MODEL, "--input", "0.27", "--output", "1.1")
    assert '"input":0.27' in plans_server.cli("prices", "list", "--json").stdout
    plans_server.cli("plans", "set", "cli-plan", '{"daily_tokens": 5000}')
    assert '"cli-plan"' in plans_server.cli("plans", "list", "--json").stdout
    plans_server.cli("orgs", "create", "cli-co", "--plan", "cli-plan")
    plans_server.cli("plans", "delete", "cli-plan")
    refused = plans_server.cli("plans", "set", "x", "[1]", check=False)
    assert refused.returncode != 0 and "JSON object" in refused.stderr
