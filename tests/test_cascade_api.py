"""The cascade policies end to end, on two live models: the embedded SmolLM2 answers first,
and the large model is a second ModelGrid serving it behind the OpenAI-compatible engine (or,
where what it was sent must be read back, the fault server)."""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from .faults import FaultServer
from .services import Server, run_server
from .test_auto_api import write_router

SMALL = "smollm2-135m-instruct"
POEM = "Write a short poem about the sea, with a new image in every line."
SUM = "What is 2 + 2? Answer with the number."

CONFIG = """
[models.smollm2-135m-instruct]
n_ctx = 1024
prices = {{ input = 100, output = 200 }}

[models.big]
prices = {{ input = 1000, output = 4000 }}
[[models.big.deployments]]
engine = "openai"
base_url = "{upstream}"
model = "smollm2-135m-instruct"
api_key_env = "UPSTREAM_MODELGRID_KEY"

[models.echo]
[[models.echo.deployments]]
engine = "openai"
base_url = "{faults}"

[auto.sure]
small = "smollm2-135m-instruct"
large = "big"
policy = "cascade"
signal = "logprob"
min_confidence = 0.0

[auto.doubtful]
small = "smollm2-135m-instruct"
large = "big"
policy = "cascade"
signal = "logprob"
min_confidence = 1.0
plans.pro = {{ min_confidence = 0.0 }}

[auto.vote]
small = "smollm2-135m-instruct"
large = "big"
policy = "cascade"
signal = "agreement"
samples = 3
min_confidence = 1.0

[auto.checked]
small = "smollm2-135m-instruct"
large = "big"
policy = "cascade"
signal = "verifier"
router = "{verifier}"
max_large_share = 0.5

[auto.polish]
small = "smollm2-135m-instruct"
large = "echo"
policy = "refine"
signal = "logprob"
min_confidence = 1.0

[auto.shadowed]
small = "smollm2-135m-instruct"
large = "big"
policy = "cascade"
signal = "logprob"
min_confidence = 0.0
shadow_share = 1.0

[auto.doubted]
small = "smollm2-135m-instruct"
large = "big"
policy = "cascade"
signal = "logprob"
min_confidence = 1.0
shadow_share = 1.0

[auto.judged]
small = "smollm2-135m-instruct"
large = "big"
policy = "cascade"
signal = "logprob"
min_confidence = 0.0
shadow_share = 1.0
judge = "echo"

[plans.pro]
"""


@pytest.fixture(scope="module")
def front(
    server: Server, faults: FaultServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("cascade")
    config = CONFIG.format(
        upstream=server.base_url,
        faults=faults.url("ok"),
        verifier=write_router(tmp / "verifier.json", inputs="answer"),
    )
    with run_server(tmp / "server", config, UPSTREAM_MODELGRID_KEY=server.admin_key) as running:
        yield running


def ask(front: Server, key: str, model: str, prompt: str, **extra: Any) -> tuple[Any, Any]:
    client = openai.OpenAI(base_url=front.base_url, api_key=key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=24,
        seed=3,
        **extra,
    )
    return raw.parse(), raw.headers


def ledger(front: Server, org: str) -> dict[str, dict[str, Any]]:
    r = httpx.get(
        f"{front.url}/admin/v1/orgs/{org}/ledger",
        headers={"Authorization": f"Bearer {front.admin_key}"},
    )
    return {e["request_id"]: e for e in r.json()["data"]}


def test_a_confident_answer_is_kept_and_billed_against_the_large_model(front: Server) -> None:
    reply, headers = ask(front, front.new_key("keep-org"), "sure", SUM)
    assert reply.model == SMALL and reply.choices[0].message.content
    assert headers["x-modelgrid-route"].startswith(f"sure -> {SMALL} (kept: logprob ")
    assert reply.choices[0].logprobs is None  # read for the decision, not asked for
    entry = ledger(front, "keep-org")[headers["x-request-id"]]
    assert entry["model"] == SMALL and entry["route"] == "sure"
    # The same tokens at the large model's prices (ten and twenty times the small's).
    assert entry["baseline"] > 9 * entry["list_price"] > 0


def test_a_doubtful_answer_goes_to_the_large_model_and_both_are_billed(front: Server) -> None:
    reply, headers = ask(front, front.new_key("escalate-org"), "doubtful", SUM)
    assert reply.model == "big" and reply.choices[0].message.content
    assert headers["x-modelgrid-route"].startswith("doubtful -> big (escalated: logprob ")
    entries = ledger(front, "escalate-org")
    rid = headers["x-request-id"]
    draft, answer = entries[f"{rid}#draft"], entries[rid]
    assert draft["model"] == SMALL and answer["model"] == "big"
    assert draft["route"] == answer["route"] == "doubtful"
    assert draft["baseline"] == 0 and answer["baseline"] == answer["list_price"] > 0
    usage = reply.usage
    assert usage.completion_tokens == draft["tokens_out"] + answer["tokens_out"]
    assert usage.prompt_tokens == draft["tokens_in"] + answer["tokens_in"]


def test_a_plan_sets_its_own_target(front: Server) -> None:
    reply, headers = ask(front, front.new_key("pro-org", plan="pro"), "doubtful", SUM)
    assert reply.model == SMALL
    assert "threshold 0.000" in headers["x-modelgrid-route"]


def test_samples_that_disagree_escalate_and_agreeing_ones_stop_early(front: Server) -> None:
    key = front.new_key("vote-org")
    reply, headers = ask(front, key, "vote", POEM, temperature=1.0)
    assert reply.model == "big"
    assert "escalated: agreement" in headers["x-modelgrid-route"]
    # A draft that lost is billed with every sample drawn (at least two: two that differ
    # already rule out three of three agreeing).
    draft = ledger(front, "vote-org")[headers["x-request-id"] + "#draft"]
    assert draft["tokens_out"] > 24


def test_the_verifier_reads_the_prompt_and_the_answer(front: Server) -> None:
    key = front.new_key("verify-org")
    hard, headers = ask(front, key, "checked", "prove that the square root of two is irrational")
    assert hard.model == "big" and "escalated: verifier" in headers["x-modelgrid-route"]
    easy, headers = ask(front, key, "checked", "say hello to my friend")
    assert easy.model == SMALL and "kept: verifier" in headers["x-modelgrid-route"]


def test_refine_shows_the_large_model_the_draft(front: Server, faults: FaultServer) -> None:
    before = len(faults.bodies)
    reply, headers = ask(front, front.new_key("refine-org"), "polish", SUM)
    assert reply.model == "echo" and reply.choices[0].message.content.startswith("Hello")
    assert headers["x-modelgrid-route"].startswith("polish -> echo (escalated: logprob ")
    sent = faults.bodies[before:][-1]["messages"]
    assert sent[0] == {"role": "user", "content": SUM}
    assert sent[-1]["role"] == "user" and "Here is a draft answer" in sent[-1]["content"]


def test_a_streamed_cascade_says_how_it_decided_before_any_text(front: Server) -> None:
    client = openai.OpenAI(
        base_url=front.base_url, api_key=front.new_key("stream-org"), max_retries=0
    )
    for model, answered in (("sure", SMALL), ("doubtful", "big")):
        args: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": SUM}],
            "max_tokens": 24,
            "seed": 3,
            "temperature": 0,
        }
        whole = client.chat.completions.create(**args)
        with client.chat.completions.with_streaming_response.create(
            **args, stream=True, stream_options={"include_usage": True}
        ) as response:
            assert response.headers["x-modelgrid-route"].startswith(f"{model} -> {answered}")
            chunks = list(response.parse())
        assert {c.model for c in chunks} == {answered}
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == whole.choices[0].message.content
        assert chunks[-1].usage is not None and whole.usage is not None
        assert chunks[-1].usage.total_tokens == whole.usage.total_tokens


def test_a_cascade_answers_one_choice_on_the_chat_endpoint(front: Server) -> None:
    client = openai.OpenAI(base_url=front.base_url, api_key=front.admin_key, max_retries=0)
    with pytest.raises(openai.BadRequestError, match="n must be 1") as refused:
        client.chat.completions.create(
            model="sure", messages=[{"role": "user", "content": SUM}], n=2
        )
    assert refused.value.body["param"] == "n"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError, match="chat/completions only"):
        client.completions.create(model="sure", prompt=SUM)


def test_the_margin_report_shows_the_saving(front: Server) -> None:
    ask(front, front.new_key("margin-org"), "sure", SUM)
    r = httpx.get(
        f"{front.url}/admin/v1/reports/margin",
        headers={"Authorization": f"Bearer {front.admin_key}"},
    )
    sure = r.json()["routes"]["sure"]
    assert sure["always_large"] > sure["list_price"] > 0
    assert sure["saving"] == pytest.approx(sure["always_large"] - sure["list_price"])
    assert 0.8 < sure["saving_share"] < 1


def test_shadow_runs_never_change_the_answer_or_charge_the_caller(front: Server) -> None:
    key = front.new_key("shadow-org")
    args: dict[str, Any] = {"temperature": 0, "metadata": {"reference": "4"}}
    plain, _ = ask(front, key, "sure", SUM, **args)
    shadowed, _ = ask(front, key, "shadowed", SUM, **args)
    assert shadowed.model == SMALL
    assert shadowed.choices[0].message.content == plain.choices[0].message.content
    assert shadowed.usage == plain.usage
    doubted, _ = ask(front, key, "doubted", SUM, **args)  # escalated: its draft is the pair
    assert doubted.model == "big"

    out = front.data_dir.parent / "shadow.csv"
    deadline = time.monotonic() + 30
    while True:  # the pairs are written once the responses have ended
        for name in ("shadowed", "doubted"):
            front.cli("routing", "shadow", "--auto", name, "--out", str(out.with_stem(name)))
        rows = {
            name: list(csv.DictReader(out.with_stem(name).open()))
            for name in ("shadowed", "doubted")
        }
        if all(rows.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    (pair,) = rows["shadowed"]
    assert pair["prompt"] == SUM and pair[f"{SMALL}_response"]
    # The answer as the model gave it: the plan's text label is not the model's.
    assert shadowed.choices[0].message.content.startswith(pair[f"{SMALL}_response"])
    assert pair["big_response"] and pair[SMALL] in ("True", "False")
    assert doubted.choices[0].message.content.startswith(rows["doubted"][0]["big_response"])

    # The caller paid for its own three requests and the escalated draft, nothing more;
    # the shadow run is the operator's, under its own route.
    mine = ledger(front, "shadow-org")
    assert len(mine) == 4 and all(not e["route"].endswith(":shadow") for e in mine.values())
    r = httpx.get(
        f"{front.url}/admin/v1/reports/margin",
        headers={"Authorization": f"Bearer {front.admin_key}"},
    )
    assert r.json()["routes"]["shadowed:shadow"]["list_price"] > 0
    assert "doubted:shadow" not in r.json()["routes"]  # its pair cost nothing more


def test_without_a_reference_the_judge_model_is_asked_about_both_answers(
    front: Server, faults: FaultServer
) -> None:
    before = len(faults.bodies)
    ask(front, front.new_key("judge-org"), "judged", SUM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        asked = [
            b["messages"][0]["content"]
            for b in faults.bodies[before:]
            if "Is this answer correct" in b.get("messages", [{}])[0].get("content", "")
        ]
        if len(asked) == 2:
            break
        time.sleep(0.1)
    assert len(asked) == 2 and all(a.startswith(f"Question:\n{SUM}") for a in asked)
    # The fault server answers neither yes nor no: no verdict, so no training row yet.
    out = front.data_dir.parent / "judged.csv"
    front.cli("routing", "shadow", "--auto", "judged", "--out", str(out))
    assert list(csv.DictReader(out.open())) == []
