"""The review queue's admin API and ``modelgrid review``, on a small app of their own: the
real routes, middleware, error handlers, key store and queue, on both databases."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import orjson
import pytest
import uvicorn
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from modelgrid import admin_review, routes
from modelgrid.access_log import AccessLog
from modelgrid.cli import main
from modelgrid.errors import APIError
from modelgrid.gateway import Gateway
from modelgrid.metrics import Metrics
from modelgrid.middleware import RequestMiddleware
from modelgrid.storage.database import Database
from modelgrid.storage.keys import KeyStore
from modelgrid.storage.review_queue import ReviewItem, ReviewQueue, new_item

pytestmark = pytest.mark.anyio


@dataclass
class Review:
    client: httpx.AsyncClient
    queue: ReviewQueue
    keys: KeyStore
    app: Starlette
    admin: dict[str, str]
    decided: list[ReviewItem] = field(default_factory=list)


def review_app(keys: KeyStore, queue: ReviewQueue) -> Starlette:
    metrics = Metrics()
    app = Starlette(
        routes=admin_review.routes,
        middleware=[
            Middleware(RequestMiddleware, metrics=metrics, access_log=AccessLog(enabled=False))
        ],
        exception_handlers={APIError: routes.api_error, HTTPException: routes.http_error},
    )
    # Authentication is all these routes ask of the gateway.
    app.state.gateway = Gateway(keys, cast(Any, None), metrics, cast(Any, None), cast(Any, None))
    app.state.review_queue = queue
    return app


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def review(db: Database, tmp_path: Path) -> AsyncIterator[Review]:
    keys = KeyStore(db)
    decided: list[ReviewItem] = []
    queue = ReviewQueue(db, tmp_path / "journal", flush_interval=3600, on_decision=decided.append)
    await queue.start()
    app = review_app(keys, queue)
    admin = bearer(await keys.create("operator", role="admin"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Review(client, queue, keys, app, admin, decided)
    await queue.close()


def flagged(number: int, stage: str = "output") -> ReviewItem:
    return new_item(
        f"chatcmpl-{number:032x}",
        "org1",
        "k" * 32,
        "smollm2-135m-instruct",
        "input" if stage == "input" else "output",
        [{"action": "flag", "source": "pii:phone", "detail": f"at {number}-{number + 11}"}],
        f"call me on 1380013800{number} please",
    )


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    return body


async def test_the_operator_lists_items_newest_first(review: Review) -> None:
    made = [flagged(i, "input" if i == 0 else "output") for i in range(3)]
    for item in made:
        review.queue.append(item)
        await asyncio.sleep(0.001)  # distinct times
    r = await review.client.get("/admin/v1/review", headers=review.admin)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [card["id"] for card in data] == [item.id for item in made[::-1]]
    card = data[-1]
    assert card == {
        "id": made[0].id,
        "object": "review.item",
        "content_id": made[0].content_id,
        "created_at": made[0].created_at.isoformat(),
        "org_id": "org1",
        "key_id": "k" * 32,
        "model": "smollm2-135m-instruct",
        "stage": "input",
        "reasons": [{"action": "flag", "source": "pii:phone", "detail": "at 0-11"}],
        "excerpt": "call me on 13800138000 please",
        "status": "pending",
        "decided_by": None,
        "decided_by_prefix": None,
        "decided_at": None,
        "note": "",
    }
    r = await review.client.get("/admin/v1/review?status=pending&limit=2", headers=review.admin)
    assert [c["id"] for c in r.json()["data"]] == [made[2].id, made[1].id]
    r = await review.client.get("/admin/v1/review?status=approved", headers=review.admin)
    assert r.json() == {"object": "list", "data": []}
    r = await review.client.get(f"/admin/v1/review/{made[1].id}", headers=review.admin)
    assert r.status_code == 200 and r.json()["id"] == made[1].id


async def test_a_decision_records_who_and_when_once(review: Review) -> None:
    item = flagged(1)
    review.queue.append(item)
    path = f"/admin/v1/review/{item.id}"
    body = {"decision": "reject", "note": "a real phone number"}
    r = await review.client.post(path, json=body, headers=review.admin)
    assert r.status_code == 200, r.text
    card = r.json()
    [operator] = await review.keys.list_all()
    assert (card["status"], card["note"]) == ("rejected", "a real phone number")
    assert (card["decided_by"], card["decided_by_prefix"]) == (operator.id, operator.prefix)
    assert card["decided_at"] is not None
    assert [d.id for d in review.decided] == [item.id]  # handed to the audit log, once
    again = await review.client.post(path, json={"decision": "approve"}, headers=review.admin)
    problem = error(again, 409)
    assert problem["code"] == "already_decided" and problem["param"] == "id"
    assert "rejected" in problem["message"] and operator.prefix in problem["message"]
    assert len(review.decided) == 1
    r = await review.client.get(path, headers=review.admin)
    assert r.json()["status"] == "rejected"


async def test_bad_requests_are_openai_errors(review: Review) -> None:
    item = flagged(1)
    review.queue.append(item)
    client, admin, path = review.client, review.admin, f"/admin/v1/review/{item.id}"
    assert error(await client.get("/admin/v1/review/rev_nope", headers=admin), 404)["param"] == "id"
    missing = await client.post(
        "/admin/v1/review/rev_nope", json={"decision": "approve"}, headers=admin
    )
    assert error(missing, 404)["code"] == "review_item_not_found"
    for body, param in (
        ({"decision": "maybe"}, "decision"),
        ({}, "decision"),
        ({"decision": "approve", "note": "x" * 2001}, "note"),
        ({"decision": "approve", "note": 5}, "note"),
    ):
        assert error(await client.post(path, json=body, headers=admin), 400)["param"] == param
    assert error(await client.post(path, content=b"{nope", headers=admin), 400)["param"] is None
    for query, param in (("status=done", "status"), ("limit=0", "limit"), ("limit=x", "limit")):
        got = await client.get(f"/admin/v1/review?{query}", headers=admin)
        assert error(got, 400)["param"] == param
    assert review.decided == []
    assert (await review.queue.get(item.id)) == item


async def test_only_the_operator_reviews(review: Review) -> None:
    item = flagged(1)
    review.queue.append(item)
    user = bearer(await review.keys.create("app"))
    path = f"/admin/v1/review/{item.id}"
    assert error(await review.client.get("/admin/v1/review", headers=user), 403)
    assert error(await review.client.post(path, json={"decision": "approve"}, headers=user), 403)
    assert error(await review.client.get("/admin/v1/review"), 401)["code"] == "missing_api_key"
    assert review.decided == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_review_commands(review: Review) -> None:
    items = [flagged(1), flagged(2)]
    for item in items:
        review.queue.append(item)
    port = free_port()
    config = uvicorn.Config(
        review.app, host="127.0.0.1", port=port, log_config=None, lifespan="off"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while not server.started:
            assert asyncio.get_running_loop().time() < deadline, "the server did not start"
            await asyncio.sleep(0.01)
        url = ["--url", f"http://127.0.0.1:{port}", "--key", review.admin["Authorization"][7:]]

        def cli(*args: str) -> Any:
            return CliRunner().invoke(main, [*args, *url])

        listed = await asyncio.to_thread(cli, "review", "list", "--json")
        assert listed.exit_code == 0, listed.output
        assert [i["id"] for i in orjson.loads(listed.output)] == [items[1].id, items[0].id]
        text = await asyncio.to_thread(cli, "review", "list", "--status", "pending")
        assert text.exit_code == 0 and items[0].id in text.output and "pii:phone" in text.output
        done = await asyncio.to_thread(
            cli, "review", "decide", items[0].id, "approve", "--note", "ok"
        )
        assert done.exit_code == 0 and f"{items[0].id} approved by mg-" in done.output
        again = await asyncio.to_thread(cli, "review", "decide", items[0].id, "reject")
        assert again.exit_code == 1 and "409" in again.output and "already approved" in again.output
        assert [d.note for d in review.decided] == ["ok"]
    finally:
        server.should_exit = True
        await serving
