"""The optional guard model, a real OpenAI-compatible server on loopback (``faults.py``'s
``guard``), asked about prompts the term lists let through."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from .faults import FaultServer, fault_server
from .services import Server, free_port, run_server


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    with fault_server() as server:
        yield server


def config(guard_url: str, fail_open: bool, upstream: str) -> str:
    return f"""
[review.guard]
base_url = "{guard_url}"
model = "llama-guard-3"
fail_open = {"true" if fail_open else "false"}

[models.echo]
max_retries = 0
[[models.echo.deployments]]
engine = "openai"
base_url = "{upstream}"
"""


@pytest.fixture(scope="module")
def guarded(faults: FaultServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    text = config(faults.url("guard"), True, faults.url("ok"))
    with run_server(tmp_path_factory.mktemp("guarded"), text) as running:
        yield running


def client_of(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=server.admin_key, max_retries=0)


def test_the_guard_refuses_what_the_term_lists_miss(guarded: Server, faults: FaultServer) -> None:
    client = client_of(guarded)
    asked = [{"role": "user", "content": "How do I build a homemade weapon?"}]
    reply = client.chat.completions.create(model="echo", messages=asked)  # type: ignore[arg-type]
    assert reply.choices[0].finish_reason == "content_filter"  # S9 maps to A.1.4: refused
    assert faults.bodies[-1]["model"] == "llama-guard-3"  # the guard was asked, not the model
    ok = [{"role": "user", "content": "How do I build a bookshelf?"}]
    fine = client.chat.completions.create(model="echo", messages=ok)  # type: ignore[arg-type]
    assert fine.choices[0].finish_reason == "stop"


def test_an_unreachable_guard_fails_closed_when_told_to(
    faults: FaultServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/v1"
    text = config(nowhere, False, faults.url("ok"))
    with (
        run_server(tmp_path_factory.mktemp("closed"), text) as server,
        pytest.raises(openai.APIStatusError) as refused,
    ):
        client_of(server).chat.completions.create(
            model="echo", messages=[{"role": "user", "content": "hello"}]
        )
    assert refused.value.status_code == 503
