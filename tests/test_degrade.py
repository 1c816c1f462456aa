"""A plan that degrades instead of refusing, and the cost and margin of what was served:
two live models (the embedded one under two names), the official client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from .services import Server, run_server

CONFIG = """
[plans.free]
daily_tokens = 60
quota_models = ["large"]
degrade_to = "small"
max_tokens = 8

[models.large]
n_ctx = 512
cost_per_hour = 36.0

[models.small]
n_ctx = 512
"""


@pytest.fixture(scope="module")
def degrading(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("degrade"), CONFIG) as running:
        yield running


def test_an_exhausted_quota_degrades_to_the_small_model(degrading: Server) -> None:
    admin = {"Authorization": f"Bearer {degrading.admin_key}"}
    key = httpx.post(
        f"{degrading.url}/admin/v1/keys", json={"org": "thrifty"}, headers=admin
    ).json()["key"]
    client = openai.OpenAI(base_url=degrading.base_url, api_key=key, max_retries=0)
    served = []
    for _ in range(4):
        raw = client.chat.completions.with_raw_response.create(
            model="large", messages=[{"role": "user", "content": "Hi"}]
        )
        served.append((raw.parse().model, raw.headers.get("x-modelgrid-degraded")))
    assert served[0] == ("large", None)  # within the quota
    assert served[-1] == ("small", "large -> small")  # the quota spent: the small model answers
    entries = httpx.get(f"{degrading.url}/admin/v1/orgs/thrifty/ledger", headers=admin).json()[
        "data"
    ]
    assert {e["model"] for e in entries} == {"large", "small"}
    large = [e for e in entries if e["model"] == "large"]
    assert sum(e["tokens_in"] + e["tokens_out"] for e in large) <= 60
    assert all(e["cost"] > 0 for e in large)  # cost_per_hour: each bears its time
    assert all(e["cost"] == 0 for e in entries if e["model"] == "small")


def test_margin_report_matches_the_ledger(degrading: Server) -> None:
    admin = {"Authorization": f"Bearer {degrading.admin_key}"}
    httpx.post(f"{degrading.url}/admin/v1/keys", json={"org": "m"}, headers=admin)
    client = openai.OpenAI(base_url=degrading.base_url, api_key=degrading.admin_key)
    client.chat.completions.create(
        model="large", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    report = httpx.get(f"{degrading.url}/admin/v1/reports/margin", headers=admin).json()
    cli = degrading.cli("report", "margin", "--json").stdout
    assert f'"requests":{report["requests"]}' in cli
    large = report["models"]["large"]
    assert large["cost"] > 0 and large["actual_revenue"] == 0  # no prices set: free use
    assert large["actual_margin"] is None
    assert report["input_tokens"] == sum(m["input_tokens"] for m in report["models"].values())
    text = degrading.cli("report", "margin").stdout
    assert "all models" in text and "large" in text
