"""Labels for AI-generated content: the rules (pure) and every response end to end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import orjson
import pytest

from modelgrid.labels import ExplicitLabel, Labels, label_problem
from modelgrid.settings import PlanSettings, SettingsError, load_settings

from .services import Server, run_server

MODEL = "smollm2-135m-instruct"
CODE = "MG0123456789ABCDEFGHIJKLMNO"  # 27 characters


def test_a_label_needs_an_ai_and_a_generation_element() -> None:
    assert label_problem("本内容由人工智能生成") is None
    assert label_problem("AI-generated content") is None
    assert label_problem("本内容由机器生成") is not None  # no AI element
    assert label_problem("Written with AI") is not None  # no generation element
    with pytest.raises(ValueError, match="label_text"):
        PlanSettings(label_text="Hello")


def test_unlabelled_output_needs_the_users_duty_and_six_months_of_logs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="label_duty user"):
        PlanSettings(label_position="none")
    config = tmp_path / "c.toml"
    config.write_text('[plans.b2b]\nlabel_position = "none"\nlabel_duty = "user"\n')
    with pytest.raises(SettingsError, match="six months"):
        load_settings(config, env={})
    config.write_text(config.read_text() + "retention_days = 183\n")
    assert load_settings(config, env={}).plans["b2b"].label_position == "none"
    # Its stored conversations too: kept for ever (0) or at least six months.
    plan = config.read_text()
    for days, ok in ((30, False), (0, True), (365, True)):
        config.write_text(f"content_retention_days = {days}\n{plan}")
        if ok:
            assert load_settings(config, env={}).content_retention_days == days
        else:
            with pytest.raises(SettingsError, match="conversations kept at least six months"):
                load_settings(config, env={})


def test_label_positions() -> None:
    end, start = ExplicitLabel("AI生成", "end"), ExplicitLabel("AI生成", "start")
    assert end.apply("Hi.") == "Hi.\n\nAI生成" and start.apply("Hi.") == "AI生成\n\nHi."
    assert (end.opening, end.closing) == (None, "\n\nAI生成")
    assert (start.opening, start.closing) == ("AI生成\n\n", None)
    assert Labels(CODE).explicit(None, False) is None  # the operator's own keys
    assert Labels(CODE).explicit(PlanSettings(), True) is None  # JSON output
    meta = Labels(CODE).metadata("chatcmpl-abc")
    assert meta["Label"] == "1" and meta["ContentProducer"] == CODE
    assert meta["ProduceID"] == "chatcmpl-abc"
    assert all(" " not in v and '"' not in v and "\\" not in v for v in meta.values())


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    config = f'provider_code = "{CODE}"\n[models.{MODEL}]\nn_ctx = 512\n'
    with run_server(tmp_path_factory.mktemp("labels"), config) as running:
        yield running


def user_client(server: Server) -> openai.OpenAI:
    admin = {"Authorization": f"Bearer {server.admin_key}"}
    key = httpx.post(f"{server.url}/admin/v1/keys", json={"org": "public"}, headers=admin)
    return openai.OpenAI(base_url=server.base_url, api_key=key.json()["key"], max_retries=0)


def test_every_response_is_labelled(labelled: Server) -> None:
    client = user_client(labelled)
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=5
    )
    reply = raw.parse()
    assert (reply.choices[0].message.content or "").endswith("\n\n本内容由人工智能生成")
    header = orjson.loads(raw.headers["aigc"])["AIGC"]
    assert header["ContentProducer"] == CODE and header["ProduceID"] == reply.id
    assert reply.model_extra is not None and reply.model_extra["AIGC"] == header
    # Streamed: the label is the last text before the finish; the metadata rides on chunk one.
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=5, stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.endswith("\n\n本内容由人工智能生成")
    assert chunks[0].model_extra is not None and chunks[0].model_extra["AIGC"]["Label"] == "1"
    # JSON output keeps the JSON whole: the implicit label only.
    as_json = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Give me a JSON object."}],
        response_format={"type": "json_object"},
        max_tokens=20,
    )
    assert "人工智能" not in (as_json.choices[0].message.content or "")
    assert as_json.model_extra is not None and "AIGC" in as_json.model_extra
    # Completions too.
    text_reply = client.completions.create(model=MODEL, prompt="Once upon", max_tokens=3)
    assert text_reply.choices[0].text.endswith("本内容由人工智能生成")


def test_the_operators_own_keys_get_the_implicit_label_only(labelled: Server) -> None:
    client = openai.OpenAI(base_url=labelled.base_url, api_key=labelled.admin_key)
    reply = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=5
    )
    assert "人工智能" not in (reply.choices[0].message.content or "")
    assert reply.model_extra is not None and reply.model_extra["AIGC"]["ProduceID"] == reply.id
