"""Organisations and plans end to end: which models a plan's keys see and may call."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai

from .services import free_port, run_server

CONFIG = f"""
[plans.basic]
models = ["smollm2-135m-instruct"]

[models.smollm2-135m-instruct]
n_ctx = 512

[models.premium]
[[models.premium.deployments]]
engine = "openai"
base_url = "http://127.0.0.1:{free_port()}/v1"
"""


def test_a_plan_sees_and_calls_only_its_models(tmp_path: Path) -> None:
    with run_server(tmp_path, CONFIG) as server:
        key = server.cli("keys", "create", "--org", "acme", "--plan", "basic").stdout.strip()
        client = openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0)
        assert [m.id for m in client.models.list().data] == ["smollm2-135m-instruct"]
        refused = httpx.post(
            f"{server.base_url}/chat/completions",
            json={"model": "premium", "messages": [{"role": "user", "content": "Hi"}]},
            headers={"Authorization": f"Bearer {key}"},
        )
        unknown = httpx.post(
            f"{server.base_url}/chat/completions",
            json={"model": "no-such-model", "messages": [{"role": "user", "content": "Hi"}]},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert refused.status_code == unknown.status_code == 404
        # forbidden reads exactly like unknown, but for the name the caller sent
        assert refused.json()["error"]["message"].replace("premium", "X") == unknown.json()[
            "error"
        ]["message"].replace("no-such-model", "X")
        assert (
            httpx.get(
                f"{server.base_url}/models/premium", headers={"Authorization": f"Bearer {key}"}
            ).status_code
            == 404
        )
        reply = client.chat.completions.create(
            model="smollm2-135m-instruct",
            messages=[{"role": "user", "content": "Hi"}],
            max_tokens=2,
        )
        assert reply.choices[0].message.content is not None
        admin = openai.OpenAI(base_url=server.base_url, api_key=server.admin_key, max_retries=0)
        assert {m.id for m in admin.models.list().data} == {"smollm2-135m-instruct", "premium"}

        orgs = json.loads(server.cli("orgs", "list", "--json").stdout)
        assert [(o["name"], o["plan"], o["keys"]) for o in orgs] == [("acme", "basic", 1)]
        server.cli("orgs", "create", "acme", "--plan", "pro")
        moved = json.loads(server.cli("orgs", "list", "--json").stdout)
        assert moved[0]["plan"] == "pro"
        plans = json.loads(server.cli("plans", "list", "--json").stdout)
        assert plans["basic"]["models"] == ["smollm2-135m-instruct"] and "free" in plans
        bad = server.cli("keys", "create", "--org", "acme", "--plan", "gold", check=False)
        assert bad.returncode != 0 and "no plan 'gold'" in bad.stderr
        orphan = server.cli("keys", "create", "--plan", "pro", check=False)
        assert orphan.returncode != 0 and "--org" in orphan.stderr
