"""Rate limits end to end: OpenAI's 429 and headers, and a limit that holds across replicas."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import httpx

from .services import Server, run_server

CONFIG = "[models.smollm2-135m-instruct]\nn_ctx = 512\n"
BODY = {
    "model": "smollm2-135m-instruct",
    "messages": [{"role": "user", "content": "Hi"}],
    "max_tokens": 1,
}


def ask(server: Server, key: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/chat/completions",
        json=BODY,
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )


def test_requests_per_minute_per_key_in_one_process(tmp_path: Path) -> None:
    with run_server(tmp_path, CONFIG, MODELGRID_PLANS__FREE__REQUESTS_PER_MINUTE="2") as server:
        key = server.cli("keys", "create").stdout.strip()
        first, second, third = (ask(server, key) for _ in range(3))
        assert (first.status_code, second.status_code) == (200, 200)
        assert first.headers["x-ratelimit-limit-requests"] == "2"
        assert [
            first.headers["x-ratelimit-remaining-requests"],
            second.headers["x-ratelimit-remaining-requests"],
        ] == ["1", "0"]
        assert third.status_code == 429
        assert third.json()["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(third.headers["retry-after"]) <= 30  # one interval: 60 s / 2
        assert third.headers["x-ratelimit-remaining-requests"] == "0"
        assert ask(server, server.admin_key).status_code == 200  # the operator is not limited
        other = server.cli("keys", "create").stdout.strip()
        assert ask(server, other).status_code == 200  # a lone key is its own account
        # an organisation's keys share its limit, as OpenAI counts per organisation
        team = [server.cli("keys", "create", "--org", "acme").stdout.strip() for _ in range(2)]
        assert [ask(server, k).status_code for k in (team[0], team[1], team[0])] == [200, 200, 429]


def test_concurrent_requests_per_organisation(tmp_path: Path) -> None:
    config = CONFIG + "[plans.free]\nmax_concurrency = 1\n"
    with run_server(tmp_path, config) as server:
        key = server.cli("keys", "create", "--org", "acme").stdout.strip()
        long = {**BODY, "max_tokens": 300, "stream": True}
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.stream(
            "POST", f"{server.base_url}/chat/completions", json=long, headers=headers
        ) as r:
            lines = r.iter_lines()  # kept: a dropped iterator would close the connection
            next(lines)  # the stream has begun: the organisation's one slot is taken
            busy = ask(server, key)
            assert busy.status_code == 429 and busy.headers["retry-after"] == "1"
            assert "at once" in busy.json()["error"]["message"]
            for _ in lines:  # read it to the end: the slot is handed back then
                pass
        assert ask(server, key).status_code == 200
        assert ask(server, server.admin_key).status_code == 200


def test_tokens_per_minute_count_the_prompt_and_the_most_the_answer_may_take(
    tmp_path: Path,
) -> None:
    with run_server(tmp_path, CONFIG, MODELGRID_PLANS__FREE__TOKENS_PER_MINUTE="100") as server:
        key = server.cli("keys", "create").stdout.strip()
        headers = {"Authorization": f"Bearer {key}"}
        small = {**BODY, "max_tokens": 5}
        first = httpx.post(f"{server.base_url}/chat/completions", json=small, headers=headers)
        assert first.status_code == 200
        cost = first.json()["usage"]["prompt_tokens"] + 5  # counted before generation
        assert first.headers["x-ratelimit-limit-tokens"] == "100"
        assert int(first.headers["x-ratelimit-remaining-tokens"]) == 100 - cost
        statuses = [
            httpx.post(
                f"{server.base_url}/chat/completions", json=small, headers=headers
            ).status_code
            for _ in range(100 // cost)
        ]
        assert statuses[-1] == 429 and statuses.count(200) == 100 // cost - 1
        big = httpx.post(
            f"{server.base_url}/chat/completions", json={**BODY, "max_tokens": 200}, headers=headers
        )
        assert big.status_code == 429 and big.json()["error"]["param"] == "max_tokens"
        assert "Request too large" in big.json()["error"]["message"]


def test_limit_holds_across_replicas_sharing_redis(tmp_path: Path, redis_url: str) -> None:
    def replica(name: str) -> AbstractContextManager[Server]:
        return run_server(
            tmp_path / name,
            CONFIG,
            MODELGRID_REDIS_URL=redis_url,
            MODELGRID_PLANS__FREE__REQUESTS_PER_MINUTE="3",
            MODELGRID_DATA_DIR=str(tmp_path / "shared"),  # one database for both
        )

    with replica("a") as a, replica("b") as b:
        key = a.cli("keys", "create").stdout.strip()
        statuses = [ask(replica, key).status_code for replica in (a, b, a, b, a, b)]
        assert statuses.count(200) == 3, statuses  # not 3 on each replica
        assert statuses.count(429) == 3
