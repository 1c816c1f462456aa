"""The ``modelgrid`` command, run as a user runs it, against a live server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from .services import Server, run_server

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_keys_create_prints_the_key_alone_and_it_works(server: Server) -> None:
    created = server.cli("keys", "create", "--name", "cli-test")
    key = created.stdout.strip()
    assert created.stdout == key + "\n" and re.fullmatch(r"mg-[A-Za-z0-9_-]{43}", key)
    assert "shown once" in created.stderr
    client = openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0)
    assert client.models.list().data


def test_keys_can_expire(server: Server) -> None:
    key = server.cli("keys", "create", "--expires", "30d").stdout.strip()
    rows = json.loads(server.cli("keys", "list", "--json").stdout)
    row = next(r for r in rows if r["prefix"] == key[:11])
    assert row["expires_at"] is not None and row["expires_at"] > row["created_at"]
    for bad in ("yesterday", "2001-01-01"):
        result = server.cli("keys", "create", "--expires", bad, check=False)
        assert result.returncode != 0 and "--expires" in result.stderr


def test_keys_list_shows_prefixes_never_keys(server: Server) -> None:
    key = server.cli("keys", "create", "--name", "listed").stdout.strip()
    table = server.cli("keys", "list").stdout
    assert key[:11] in table and key not in table and "listed" in table
    rows = json.loads(server.cli("keys", "list", "--json").stdout)
    assert any(r["prefix"] == key[:11] and r["name"] == "listed" for r in rows)
    assert all("key" not in r and "hash" not in r for r in rows)


def test_revoked_key_is_refused_within_a_second(server: Server) -> None:
    key = server.cli("keys", "create").stdout.strip()
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{server.base_url}/models", headers=headers).status_code == 200
    server.cli("keys", "revoke", key[:11])
    deadline = time.monotonic() + 5  # the cache holds a key for 1 s; allow for a slow machine
    while httpx.get(f"{server.base_url}/models", headers=headers).status_code == 200:
        assert time.monotonic() < deadline, "revoked key still accepted"
        time.sleep(0.1)
    again = server.cli("keys", "revoke", key[:11], check=False)
    assert again.returncode != 0 and "no active key" in again.stderr


def test_models_and_chat_commands(server: Server) -> None:
    env_key = {"MODELGRID_API_KEY": server.admin_key}
    models = subprocess.run(
        [sys.executable, "-m", "modelgrid", "models"],
        env={**server.env, **env_key, "MODELGRID_URL": server.url},
        capture_output=True,
        text=True,
        check=True,
    )
    assert models.stdout.startswith("smollm2-135m-instruct\t")
    answer = server.cli("chat", "Say hello.", "--max-tokens", "12", "--temperature", "0")
    assert answer.stdout.strip()


def test_chat_without_a_server_is_a_clear_error(server: Server) -> None:
    result = server.cli("chat", "hi", "--url", "http://127.0.0.1:9", check=False)
    assert result.returncode != 0 and "cannot reach" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_a_bad_config_says_why(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("port = 'eighty'\n")
    result = subprocess.run(
        [sys.executable, "-m", "modelgrid", "serve", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "port" in result.stderr and "Traceback" not in result.stderr


def test_serve_without_an_upstream_key_says_which(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[models.up]\n[[models.up.deployments]]\nengine = "openai"\n'
        'base_url = "http://127.0.0.1:9/v1"\napi_key_env = "NO_SUCH_UPSTREAM_KEY"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "modelgrid", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "NO_SUCH_UPSTREAM_KEY"},
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "NO_SUCH_UPSTREAM_KEY" in result.stderr and "models.up" in result.stderr


def test_every_command_has_help_and_is_in_the_readme() -> None:
    import click
    from click.testing import CliRunner

    from modelgrid.cli import main

    def commands(group: click.Group, prefix: str = "") -> list[str]:
        out = []
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                out += commands(command, f"{prefix}{name} ")
            else:
                out.append(prefix + name)
        return out

    runner = CliRunner()
    names = commands(main)
    assert {"serve", "models", "chat", "keys create", "keys list", "keys revoke"} <= set(names)
    for name in names:
        result = runner.invoke(main, [*name.split(), "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output
        assert f"modelgrid {name}" in README, f"README does not document 'modelgrid {name}'"


def test_generated_admin_key_is_printed_once(tmp_path: Path) -> None:
    with run_server(tmp_path / "a", MODELGRID_ADMIN_KEY="") as first:
        printed = re.findall(r"mg-[A-Za-z0-9_-]{43}", first.log())
        assert len(printed) == 1
        admin = openai.OpenAI(base_url=first.base_url, api_key=printed[0], max_retries=0)
        assert admin.models.list().data
        data_dir = first.env["MODELGRID_DATA_DIR"]
    with run_server(tmp_path / "b", MODELGRID_ADMIN_KEY="", MODELGRID_DATA_DIR=data_dir) as second:
        assert not re.findall(r"mg-[A-Za-z0-9_-]{43}", second.log())


def test_admin_api_manages_keys(server: Server) -> None:
    admin = {"Authorization": f"Bearer {server.admin_key}"}
    created = httpx.post(f"{server.url}/admin/v1/keys", json={"name": "via-api"}, headers=admin)
    assert created.status_code == 201
    key = created.json()["key"]
    user = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{server.url}/admin/v1/keys", headers=user).status_code == 403
    listed = httpx.get(f"{server.url}/admin/v1/keys", headers=admin).json()["data"]
    assert any(k["prefix"] == key[:11] for k in listed)
    assert httpx.delete(f"{server.url}/admin/v1/keys/{key[:11]}", headers=admin).status_code == 200
    assert httpx.delete(f"{server.url}/admin/v1/keys/{key[:11]}", headers=admin).status_code == 404


def test_serve_with_several_workers(tmp_path: Path, redis_url: str) -> None:
    # Workers share limits, quotas and credits through Redis; without it they are refused.
    config = f'redis_url = "{redis_url}"\n[models.smollm2-135m-instruct]\nn_ctx = 512\n'
    (tmp_path / "alone.toml").write_text(config.split("\n", 1)[1])
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelgrid",
            "serve",
            "--workers",
            "2",
            "--config",
            str(tmp_path / "alone.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0 and "needs redis_url" in refused.stderr
    with run_server(tmp_path, config, serve_args=("--workers", "2")) as multi:
        client = openai.OpenAI(base_url=multi.base_url, api_key=multi.admin_key, max_retries=0)
        for _ in range(4):
            reply = client.chat.completions.create(
                model="smollm2-135m-instruct",
                messages=[{"role": "user", "content": "Hi"}],
                max_tokens=3,
            )
            assert reply.choices[0].message.content
        assert len(multi.log_lines('"logger":"modelgrid.access"')) >= 1
        assert "Traceback" not in multi.log()


def test_admin_api_manages_organisations_and_plans(server: Server) -> None:
    admin = {"Authorization": f"Bearer {server.admin_key}"}
    url = f"{server.url}/admin/v1"
    plans = httpx.get(f"{url}/plans", headers=admin).json()["data"]
    assert {p["name"] for p in plans} >= {"free", "pro", "enterprise"}
    assert next(p for p in plans if p["name"] == "free")["default"] is True
    created = httpx.post(f"{url}/orgs", json={"name": "globex", "plan": "pro"}, headers=admin)
    assert created.status_code == 201 and created.json()["plan"] == "pro"
    key = httpx.post(
        f"{url}/keys",
        json={"name": "svc", "org": "globex", "expires_at": "2099-01-01T00:00:00Z"},
        headers=admin,
    ).json()
    assert (key["org"], key["plan"], key["expires_at"][:4]) == ("globex", "pro", "2099")
    orgs = httpx.get(f"{url}/orgs", headers=admin).json()["data"]
    assert next(o for o in orgs if o["name"] == "globex")["keys"] == 1
    for body, param in [
        ({"name": "x", "plan": "gold"}, "plan"),
        ({"name": ""}, "name"),
    ]:
        refused = httpx.post(f"{url}/orgs", json=body, headers=admin)
        assert refused.status_code == 400 and refused.json()["error"]["param"] == param
    for body, param in [
        ({"plan": "pro"}, "plan"),
        ({"org": "globex", "expires_at": "2001-01-01"}, "expires_at"),
        ({"org": "globex", "role": "admin"}, "org"),
    ]:
        refused = httpx.post(f"{url}/keys", json=body, headers=admin)
        assert refused.status_code == 400 and refused.json()["error"]["param"] == param
    user = {"Authorization": f"Bearer {key['key']}"}
    assert httpx.get(f"{url}/orgs", headers=user).status_code == 403


def test_an_organisations_admin_manages_its_own_keys_only(server: Server) -> None:
    url = f"{server.url}/admin/v1/keys"
    boss = server.cli("keys", "create", "--org", "initech", "--org-admin").stdout.strip()
    outsider = server.cli("keys", "create", "--org", "umbrella").stdout.strip()
    headers = {"Authorization": f"Bearer {boss}"}
    made = httpx.post(url, json={"name": "worker"}, headers=headers)
    assert made.status_code == 201 and made.json()["org"] == "initech"
    assert made.json()["role"] == "user"
    listed = httpx.get(url, headers=headers).json()["data"]
    assert {k["org"] for k in listed} == {"initech"} and len(listed) == 2
    assert httpx.delete(f"{url}/{outsider[:11]}", headers=headers).status_code == 404
    assert httpx.delete(f"{url}/{made.json()['prefix']}", headers=headers).status_code == 200
    for body in ({"org": "umbrella"}, {"role": "admin"}, {"plan": "enterprise"}):
        assert httpx.post(url, json=body, headers=headers).status_code == 403
    assert httpx.get(f"{server.url}/admin/v1/orgs", headers=headers).status_code == 403
    assert httpx.get(f"{server.url}/admin/v1/deployments", headers=headers).status_code == 403
    # it calls the API like any key of its organisation
    assert httpx.get(f"{server.base_url}/models", headers=headers).status_code == 200
    bad = server.cli("keys", "create", "--org-admin", check=False)
    assert bad.returncode != 0 and "--org" in bad.stderr


@pytest.mark.postgres
def test_serving_from_postgresql(tmp_path: Path, postgres_url: str) -> None:
    with run_server(tmp_path, MODELGRID_DATABASE_URL=postgres_url) as pg_server:
        key = pg_server.cli("keys", "create", "--name", "pg").stdout.strip()
        client = openai.OpenAI(base_url=pg_server.base_url, api_key=key, max_retries=0)
        reply = client.chat.completions.create(
            model="smollm2-135m-instruct",
            messages=[{"role": "user", "content": "Hi"}],
            max_tokens=5,
        )
        assert reply.choices[0].message.content
        assert not (tmp_path / "data" / "modelgrid.db").exists()
