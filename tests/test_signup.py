"""Self-signup: off by default; when on, an organisation, its owner and a working key."""

from __future__ import annotations

from pathlib import Path

import httpx

from .services import run_server

CONFIG = "[models.smollm2-135m-instruct]\nn_ctx = 512\n"


def test_self_signup_is_off_by_default(tmp_path: Path) -> None:
    with run_server(tmp_path, CONFIG) as server:
        r = httpx.post(f"{server.base_url}/signup", json={"organisation": "x", "email": "a@x.test"})
        assert r.status_code == 403 and "Self-signup is off" in r.json()["error"]["message"]


def test_self_signup_makes_an_organisation_and_its_owner(tmp_path: Path) -> None:
    config = "self_signup = true\nsignups_per_hour = 2\nstarting_credits = 1.5\n" + CONFIG
    with run_server(tmp_path, config) as server:
        url = f"{server.base_url}/signup"
        r = httpx.post(url, json={"organisation": "Acme Ltd", "email": "Ada@acme.test"})
        assert r.status_code == 201, r.text
        made = r.json()
        assert (made["organisation"], made["plan"], made["owner"]) == (
            "Acme Ltd",
            "free",
            "ada@acme.test",
        )
        assert made["credits"] == 1.5
        owner = {"Authorization": f"Bearer {made['key']}"}
        assert httpx.get(f"{server.base_url}/models", headers=owner).status_code == 200
        members = httpx.get(f"{server.url}/admin/v1/orgs/Acme Ltd/members", headers=owner)
        assert members.status_code == 200 and members.json()["data"][0]["role"] == "owner"
        usage = httpx.get(f"{server.url}/admin/v1/orgs/Acme Ltd/usage", headers=owner).json()
        assert usage["balance"] == 1.5  # the starting credits
        again = httpx.post(url, json={"organisation": "Acme Ltd", "email": "eve@evil.test"})
        assert again.status_code == 409 and again.json()["error"]["param"] == "organisation"
        bad = httpx.post(url, json={"organisation": "ok name", "email": "not-an-email"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "email"
        # The third signup this hour passes the server's limit of two.
        limited = httpx.post(url, json={"organisation": "Third", "email": "c@third.test"})
        assert limited.status_code == 429 and "Retry-After" in limited.headers
