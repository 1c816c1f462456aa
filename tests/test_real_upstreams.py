"""ModelGrid in front of real OpenAI-compatible servers: llama.cpp's own, and another ModelGrid."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from modelgrid.engines.llama_cpp import default_model_path

from .services import Server, free_port, run_server

ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Name two colours."}]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` with the SmolLM2 file, on a free port."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(default_model_path()),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "1024",
                "--model_alias",
                "smol",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.fixture(scope="module")
def front(
    llama_server: str, server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    config = f"""
[models.via-llama-server]
[[models.via-llama-server.deployments]]
engine = "openai"
base_url = "{llama_server}"
model = "smol"

[models.via-modelgrid]
[[models.via-modelgrid.deployments]]
engine = "openai"
base_url = "{server.base_url}"
model = "smollm2-135m-instruct"
api_key_env = "UPSTREAM_MODELGRID_KEY"
"""
    tmp: Path = tmp_path_factory.mktemp("front")
    with run_server(tmp, config, UPSTREAM_MODELGRID_KEY=server.admin_key) as running:
        yield running


@pytest.mark.parametrize("model", ["via-llama-server", "via-modelgrid"])
def test_real_upstream_streamed_and_not(front: Server, model: str) -> None:
    client = openai.OpenAI(base_url=front.base_url, api_key=front.admin_key, max_retries=0)
    args = {"model": model, "messages": ASK, "max_tokens": 24, "temperature": 0, "seed": 11}
    whole = client.chat.completions.create(**args)  # type: ignore[call-overload]
    assert whole.choices[0].message.content
    chunks = list(
        client.chat.completions.create(**args, stream=True, stream_options={"include_usage": True})  # type: ignore[call-overload]
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content
    assert chunks[-1].usage is not None and whole.usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert whole.usage.prompt_tokens > 10  # the upstream's exact count, not our estimate
    text = client.completions.create(
        model=model, prompt="Once upon a time", max_tokens=8, temperature=0
    )
    assert text.choices[0].text and text.usage is not None and text.usage.completion_tokens <= 8


def test_upstream_answers_like_the_model_itself(front: Server, server: Server) -> None:
    """Through two ModelGrids, the text is what one ModelGrid gives directly."""
    args = {"messages": ASK, "max_tokens": 20, "temperature": 0, "seed": 5}
    direct = openai.OpenAI(base_url=server.base_url, api_key=server.admin_key, max_retries=0)
    chained = openai.OpenAI(base_url=front.base_url, api_key=front.admin_key, max_retries=0)
    a = direct.chat.completions.create(model="smollm2-135m-instruct", **args)  # type: ignore[call-overload]
    b = chained.chat.completions.create(model="via-modelgrid", **args)  # type: ignore[call-overload]
    assert a.choices[0].message.content == b.choices[0].message.content
    assert a.usage == b.usage
