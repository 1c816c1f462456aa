"""Feedback on responses end to end: given by the organisation whose response it was, kept
with the model that answered, read back by the operator and by that organisation alone."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from .faults import fault_server
from .services import Server, run_server

CONFIG = """
[models.up]
[[models.up.deployments]]
engine = "openai"
base_url = "{upstream}"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with (
        fault_server() as faults,
        run_server(
            tmp_path_factory.mktemp("feedback"), CONFIG.format(upstream=faults.url("ok"))
        ) as running,
    ):
        yield running


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_feedback_is_kept_with_the_model_that_answered(server: Server) -> None:
    mine = server.new_key("feedback-a")
    client = openai.OpenAI(base_url=server.base_url, api_key=mine, max_retries=0)
    reply = client.chat.completions.create(
        model="up", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    url = f"{server.base_url}/feedback"
    given = httpx.post(
        url, json={"id": reply.id, "rating": "good", "comment": "fine"}, headers=bearer(mine)
    )
    assert given.status_code == 201, given.text
    assert given.json()["model"] == "up" and given.json()["score"] == 1.0
    scored = httpx.post(url, json={"id": reply.id, "score": 0.25}, headers=bearer(mine))
    assert scored.status_code == 201
    # Another organisation cannot judge it, nor learn that it exists.
    other = httpx.post(
        url, json={"id": reply.id, "rating": "bad"}, headers=bearer(server.new_key("feedback-b"))
    )
    assert other.status_code == 404 and other.json()["error"]["param"] == "id"
    unknown = httpx.post(url, json={"id": "chatcmpl-none", "rating": "bad"}, headers=bearer(mine))
    assert unknown.status_code == 404
    both = httpx.post(url, json={"id": reply.id, "rating": "bad", "score": 1}, headers=bearer(mine))
    assert both.status_code == 400
    listed = httpx.get(f"{server.url}/admin/v1/feedback", headers=bearer(server.admin_key))
    scores = [f["score"] for f in listed.json()["data"] if f["response"] == reply.id]
    assert sorted(scores) == [0.25, 1.0]
    b_admin = bearer(server.new_key("feedback-b", role="org_admin"))
    assert httpx.get(f"{server.url}/admin/v1/feedback", headers=b_admin).json()["data"] == []
    a_admin = bearer(server.new_key("feedback-a", role="org_admin"))
    assert len(httpx.get(f"{server.url}/admin/v1/feedback", headers=a_admin).json()["data"]) == 2
    assert httpx.get(f"{server.url}/admin/v1/feedback", headers=bearer(mine)).status_code == 403
