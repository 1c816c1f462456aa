"""``auto`` end to end: a router trained here picks, per request, the embedded model or a
second model behind the OpenAI-compatible engine; the response and its header say which."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from modelgrid.routing.replay import Table
from modelgrid.routing.router import train
from modelgrid.settings import SettingsError, load_settings

from .faults import FaultServer
from .services import Server, run_server

HARD = ["prove that", "integral of", "eigenvalues of", "derive the"]
EASY = ["say hello", "name a colour", "what day follows", "spell the word"]


def write_router(path: Path, inputs: str = "prompt") -> Path:
    """Hard-sounding prompts are where the large model wins; easy ones, where both do."""
    prompts = [f"{stem} item {i}" for i in range(30) for stem in HARD + EASY]
    hard = np.array([any(p.startswith(h) for h in HARD) for p in prompts], dtype=float)
    table = Table(prompts, 1 - hard, np.ones(len(prompts)), [f"answer to {p}" for p in prompts])
    router, _ = train(table, inputs, folds=3)  # type: ignore[arg-type]
    router.save(path)
    return path


CONFIG = """
[models.smollm2-135m-instruct]
n_ctx = 512

[models.big]
[[models.big.deployments]]
engine = "openai"
base_url = "{upstream}"

[auto.auto]
small = "smollm2-135m-instruct"
large = "big"
router = "{router}"
max_large_share = 0.5
"""


@pytest.fixture(scope="module")
def server(faults: FaultServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("auto")
    config = CONFIG.format(upstream=faults.url("ok"), router=write_router(tmp / "router.json"))
    with run_server(tmp / "server", config) as running:
        yield running


def test_auto_sends_hard_prompts_to_the_large_model_and_says_so(server: Server) -> None:
    client = openai.OpenAI(
        base_url=server.base_url, api_key=server.new_key("router-org"), max_retries=0
    )

    def ask(prompt: str) -> tuple[str, str, str]:
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": prompt}], max_tokens=8
        )
        reply = raw.parse()
        return reply.model, reply.choices[0].message.content or "", raw.headers["x-modelgrid-route"]

    model, text, route = ask("prove that the square root of two is irrational")
    assert model == "big" and text.startswith("Hello from the upstream.")
    assert route.startswith("auto -> big (score ")
    model, text, route = ask("say hello to my friend")
    assert model == "smollm2-135m-instruct" and text  # the embedded model really answered
    assert route.startswith("auto -> smollm2-135m-instruct")
    cards = {m.id: m for m in client.models.list()}
    assert (cards["auto"].model_extra or {})["routes"] == ["smollm2-135m-instruct", "big"]


def test_the_ledger_names_the_model_that_answered(server: Server) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key=server.new_key("ledger-org"))
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "derive the formula"}], max_tokens=4
    )
    r = httpx.get(
        f"{server.url}/admin/v1/orgs/ledger-org/ledger",
        headers={"Authorization": f"Bearer {server.admin_key}"},
    )
    entry = {e["request_id"]: e for e in r.json()["data"]}[raw.headers["x-request-id"]]
    assert entry["model"] == "big"


def test_a_router_that_cannot_route_before_generating_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    cascade = write_router(tmp_path / "cascade.json", inputs="answer")
    config.write_text(
        f'[models.a]\n[models.b]\n[auto.auto]\nsmall = "a"\nlarge = "b"\nrouter = "{cascade}"\n'
    )
    with pytest.raises(SettingsError, match="--inputs prompt"):
        load_settings(config, env={})
    config.write_text(
        '[models.a]\n[models.b]\n[auto.auto]\nsmall = "a"\nlarge = "b"\n'
        f'router = "{tmp_path / "absent.json"}"\n'
    )
    with pytest.raises(SettingsError, match="not a readable router file"):
        load_settings(config, env={})
