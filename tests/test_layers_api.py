"""Layers end to end: a server whose base model is an upstream on loopback, with industry and
enterprise layers on it, called with the official client by keys of different organisations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from modelgrid.pricing import Price, list_price

from .faults import FaultServer
from .services import Server, run_server

CONFIG = """
[plans.free]
billed = true
[plans.pro]
billed = true

[models.base]
prices = {{ input = 1.0, output = 2.0 }}
[[models.base.deployments]]
engine = "openai"
base_url = "{upstream}"
model = "base-7b"

[layers."base/finance"]
system_prompt = "You answer questions on finance."
prices = {{ input = 3.0, output = 6.0 }}

[layers."base/finance/acme"]
system_prompt = "You work for Acme Bank."
adapter = "acme-finance-lora"
visibility = "org"
org = "acme"
review_policy = "strict"

[layers."base/tutor"]
system_prompt = "You teach school maths."
replace_prompt = true
visibility = "plans"
plans = ["pro"]
"""


@pytest.fixture(scope="module")
def server(faults: FaultServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    config = CONFIG.format(upstream=faults.url("ok"))
    with run_server(
        tmp_path_factory.mktemp("layers"), config, MODELGRID_STARTING_CREDITS="10"
    ) as s:
        yield s


def admin(server: Server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_key}"}


def client_for(server: Server, org: str, plan: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=server.new_key(org, plan), max_retries=0)


def ask(client: openai.OpenAI, model: str) -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "What is a bond?"}], max_tokens=8
    )


def test_each_organisation_sees_its_own_layers_and_the_public_ones(server: Server) -> None:
    acme, other = client_for(server, "acme", "free"), client_for(server, "other", "free")
    pro = client_for(server, "school", "pro")
    seen = {c: {m.id for m in c.models.list()} for c in (acme, other, pro)}
    assert seen[acme] == {"base", "base/finance", "base/finance/acme"}
    assert seen[other] == {"base", "base/finance"}
    assert seen[pro] == {"base", "base/finance", "base/tutor"}
    card = acme.models.retrieve("base/finance/acme")
    assert (card.model_extra or {})["parent"] == "base/finance"
    assert (card.model_extra or {})["root"] == "base"


def test_another_organisations_layer_does_not_exist_for_it(server: Server) -> None:
    other = client_for(server, "rival", "pro")
    with pytest.raises(openai.NotFoundError) as hidden:
        ask(other, "base/finance/acme")
    with pytest.raises(openai.NotFoundError) as unknown:
        ask(other, "base/finance/nobody")
    # Forbidden and unknown read alike, but for the name asked.
    assert hidden.value.body == {
        **unknown.value.body,  # type: ignore[dict-item]
        "message": "The model 'base/finance/acme' does not exist or you do not have access to it.",
    }
    with pytest.raises(openai.NotFoundError):
        other.models.retrieve("base/finance/acme")


def test_a_layer_says_its_chain_of_instructions_and_asks_for_its_adapter(
    server: Server, faults: FaultServer
) -> None:
    acme = client_for(server, "acme", "free")
    reply = ask(acme, "base/finance/acme")
    assert reply.model == "base/finance/acme"
    sent = faults.bodies[-1]
    assert sent["model"] == "acme-finance-lora"  # the upstream's name for the adapter
    assert sent["messages"][0] == {
        "role": "system",
        "content": "You answer questions on finance.\n\nYou work for Acme Bank.",
    }
    assert sent["messages"][1] == {"role": "user", "content": "What is a bond?"}
    ask(client_for(server, "school", "pro"), "base/tutor")
    tutor = faults.bodies[-1]
    assert tutor["model"] == "base-7b"  # no adapter: the base model
    assert tutor["messages"][0]["content"] == "You teach school maths."  # replaced, not appended
    ask(acme, "base")
    assert faults.bodies[-1]["messages"][0]["role"] == "user"  # the base model says nothing


def test_a_layer_is_charged_at_its_own_price_or_its_parents(server: Server) -> None:
    acme = client_for(server, "acme-billing", "free")
    for model, price in [
        ("base/finance", Price(input=3_000_000, cached_input=3_000_000, output=6_000_000)),
        ("base", Price(input=1_000_000, cached_input=1_000_000, output=2_000_000)),
    ]:
        raw = acme.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=8
        )
        reply = raw.parse()
        assert reply.usage is not None
        r = httpx.get(
            f"{server.url}/admin/v1/orgs/acme-billing/ledger",
            params={"limit": 100},
            headers=admin(server),
        )
        entry = {e["request_id"]: e for e in r.json()["data"]}[raw.headers["x-request-id"]]
        assert entry["model"] == model
        tokens = (reply.usage.prompt_tokens, 0, reply.usage.completion_tokens)
        assert entry["list_price"] * 1_000_000 == pytest.approx(list_price(price, *tokens))


def test_a_layers_review_policy_tightens_what_it_inherits(server: Server) -> None:
    # The strict policy refuses every listed risk; the default one only flags some.
    acme = client_for(server, "acme", "free")
    prompt = [{"role": "user", "content": "how do I spot a phishing site"}]
    loose = acme.chat.completions.create(model="base/finance", messages=prompt)  # type: ignore[arg-type]
    strict = acme.chat.completions.create(model="base/finance/acme", messages=prompt)  # type: ignore[arg-type]
    assert loose.choices[0].finish_reason == "stop"
    assert strict.choices[0].finish_reason == "content_filter"


def test_the_operator_adds_a_layer_at_runtime_and_removes_it(
    server: Server, faults: FaultServer
) -> None:
    url = f"{server.url}/admin/v1/layers"
    made = httpx.put(
        f"{url}/base/finance/tax",
        json={"system_prompt": "You explain tax rules.", "prices": {"input": 4.0, "output": 8.0}},
        headers=admin(server),
    )
    assert made.status_code == 200, made.text
    assert made.json()["root"] == "base" and made.json()["source"] == "api"
    client = client_for(server, "taxpayer", "free")
    ask(client, "base/finance/tax")  # at once, on the replica that took the change
    told = faults.bodies[-1]["messages"][0]["content"]
    assert told == "You answer questions on finance.\n\nYou explain tax rules."
    listed = httpx.get(url, headers=admin(server)).json()["data"]
    assert {"base/finance", "base/finance/tax"} <= {layer["id"] for layer in listed}
    # The config's layers are the config's; a layer with children stays until they go.
    config_one = httpx.put(f"{url}/base/finance", json={}, headers=admin(server))
    assert config_one.status_code == 409
    httpx.put(f"{url}/base/finance/tax/vat", json={}, headers=admin(server))
    assert httpx.delete(f"{url}/base/finance/tax", headers=admin(server)).status_code == 409
    assert httpx.delete(f"{url}/base/finance/tax/vat", headers=admin(server)).status_code == 200
    assert httpx.delete(f"{url}/base/finance/tax", headers=admin(server)).status_code == 200
    with pytest.raises(openai.NotFoundError):
        ask(client, "base/finance/tax")
    bad = httpx.put(f"{url}/nowhere/x", json={}, headers=admin(server))
    assert (
        bad.status_code == 400 and "neither a model nor a layer" in bad.json()["error"]["message"]
    )


def test_an_organisations_admin_makes_its_own_enterprise_layer(
    server: Server, faults: FaultServer, tmp_path: Path
) -> None:
    url = f"{server.url}/admin/v1/layers"
    globex = {"Authorization": f"Bearer {server.new_key('globex', role='org_admin')}"}
    made = httpx.put(
        f"{url}/base/finance/globex",
        json={"system_prompt": "You work for Globex.", "visibility": "org"},
        headers=globex,
    )
    assert made.status_code == 200, made.text
    orgs = httpx.get(f"{server.url}/admin/v1/orgs", headers=admin(server)).json()["data"]
    assert made.json()["org"] == {o["name"]: o["id"] for o in orgs}["globex"]  # its own, by id
    public = httpx.put(f"{url}/base/finance/open", json={"visibility": "everyone"}, headers=globex)
    assert public.status_code == 400 and public.json()["error"]["param"] == "visibility"
    # Building on another organisation's layer: as if it did not exist.
    on_acme = httpx.put(f"{url}/base/finance/acme/x", json={"visibility": "org"}, headers=globex)
    assert on_acme.status_code == 404
    mine = openai.OpenAI(base_url=server.base_url, api_key=server.new_key("globex"), max_retries=0)
    ask(mine, "base/finance/globex")
    assert faults.bodies[-1]["messages"][0]["content"].endswith("You work for Globex.")
    with pytest.raises(openai.NotFoundError):
        ask(client_for(server, "acme", "free"), "base/finance/globex")
    seen = {layer["id"] for layer in httpx.get(url, headers=globex).json()["data"]}
    assert "base/finance/globex" in seen and "base/finance/acme" not in seen
    assert httpx.delete(f"{url}/base/finance/acme", headers=globex).status_code == 404
    for operators_own in ({"adapter": "/etc/passwd"}, {"prices": {"input": 0, "output": 0}}):
        body = {"visibility": "org", **operators_own}
        refused = httpx.put(f"{url}/base/finance/globex2", json=body, headers=globex)
        assert refused.status_code == 403
    # A public layer it sees is still not its to change or remove.
    public_layer = httpx.put(f"{url}/base/finance/news", json={}, headers=admin(server))
    assert public_layer.status_code == 200
    taken = httpx.put(f"{url}/base/finance/news", json={"visibility": "org"}, headers=globex)
    assert taken.status_code == 403
    assert httpx.delete(f"{url}/base/finance/news", headers=globex).status_code == 403
    assert httpx.delete(f"{url}/base/finance/news", headers=admin(server)).status_code == 200
    # Its knowledge is added as any layer's, and stored as the organisation's.
    (tmp_path / "globex.md").write_text("# Globex\n\nGlobex closes its books in March.")
    added = server.cli("knowledge", "add", "base/finance/globex", str(tmp_path / "globex.md"))
    assert "1 added" in added.stderr
    cited = (
        mine.chat.completions.create(
            model="base/finance/globex",
            messages=[{"role": "user", "content": "When does Globex close its books?"}],
        ).model_extra
        or {}
    )
    assert cited["citations"][0]["layer"] == "base/finance/globex"
