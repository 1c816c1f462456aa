"""Redemption codes end to end: a real server, its admin API and the ``modelgrid`` command."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .services import Server, run_server

CODE = re.compile(r"mgc-[A-Za-z0-9_-]{32}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("codes"), "") as running:
        yield running


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def post(server: Server, path: str, body: Any, key: str | None = None) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, headers=bearer(key or server.admin_key))


def new_key(server: Server, org: str, role: str = "user") -> str:
    r = post(server, "/admin/v1/keys", {"org": org, "role": role})
    assert r.status_code == 201, r.text
    key: str = r.json()["key"]
    return key


def make_codes(server: Server, **body: Any) -> list[dict[str, Any]]:
    r = post(server, "/admin/v1/codes", body)
    assert r.status_code == 201, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


def balance(server: Server, org: str) -> float:
    r = httpx.get(f"{server.url}/admin/v1/orgs/{org}/usage", headers=bearer(server.admin_key))
    assert r.status_code == 200, r.text
    value: float = r.json()["balance"]
    return value


def error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    found: dict[str, Any] = r.json()["error"]
    return found


def test_the_operator_makes_codes_and_lists_them_without_the_codes(server: Server) -> None:
    made = make_codes(server, amount=1.5, count=3, expires_at="2999-01-01", note="promo")
    assert len(made) == 3 and len({c["code"] for c in made}) == 3
    for card in made:
        assert CODE.fullmatch(card["code"]) and card["prefix"] == card["code"][:12]
        assert card["amount"] == 1.5 and card["expires_at"].startswith("2999-01-01T00:00:00")
    r = httpx.get(f"{server.url}/admin/v1/codes", headers=bearer(server.admin_key))
    assert r.status_code == 200
    listed = {c["prefix"]: c for c in r.json()["data"]}
    for card in made:
        row = listed[card["prefix"]]
        assert (row["amount"], row["note"], row["status"]) == (1.5, "promo", "unused")
        assert row["redeemed_by"] is None and row["org"] is None
    assert not any(card["code"] in r.text for card in made)


def test_an_org_admin_redeems_for_its_own_org_once(server: Server) -> None:
    org_admin = new_key(server, "x", role="org_admin")
    post(server, "/admin/v1/orgs", {"name": "y"})  # exists, yet x's admin must not see it
    [a, b] = make_codes(server, amount=4, count=2)
    before = balance(server, "x")

    hidden = post(server, "/admin/v1/orgs/y/redeem", {"code": a["code"]}, org_admin)
    assert error(hidden, 404)["param"] == "org"
    redeemed = post(server, "/admin/v1/orgs/x/redeem", {"code": a["code"]}, org_admin)
    assert redeemed.status_code == 201, redeemed.text
    assert redeemed.json() == {"org": "x", "amount": 4.0, "balance": pytest.approx(before + 4)}
    assert balance(server, "x") == pytest.approx(before + 4)

    again = post(server, "/admin/v1/orgs/x/redeem", {"code": a["code"]})
    assert error(again, 400) == {
        "message": "This code has already been redeemed.",
        "type": "invalid_request_error",
        "param": "code",
        "code": "invalid_code",
    }
    unknown = post(server, "/admin/v1/orgs/x/redeem", {"code": "mgc-nope"}, org_admin)
    assert error(unknown, 400)["code"] == "invalid_code"
    assert balance(server, "x") == pytest.approx(before + 4)

    # The operator redeems for any organisation; the listing says who.
    assert post(server, "/admin/v1/orgs/y/redeem", {"code": b["code"]}).status_code == 201
    rows = httpx.get(f"{server.url}/admin/v1/codes", headers=bearer(server.admin_key)).json()
    by_prefix = {c["prefix"]: c for c in rows["data"]}
    assert (by_prefix[a["prefix"]]["status"], by_prefix[a["prefix"]]["org"]) == ("redeemed", "x")
    assert by_prefix[b["prefix"]]["org"] == "y"


def test_only_the_operator_makes_or_lists_codes_and_users_redeem_nothing(server: Server) -> None:
    org_admin = new_key(server, "z", role="org_admin")
    user = new_key(server, "z")
    [card] = make_codes(server, amount=1)
    assert error(post(server, "/admin/v1/codes", {"amount": 1}, org_admin), 403)
    listing = httpx.get(f"{server.url}/admin/v1/codes", headers=bearer(org_admin))
    assert error(listing, 403)["code"] == "permission_denied"
    refused = post(server, "/admin/v1/orgs/z/redeem", {"code": card["code"]}, user)
    assert error(refused, 403)["type"] == "permission_error"
    # The refused attempt did not spend the code.
    assert post(server, "/admin/v1/orgs/z/redeem", {"code": card["code"]}).status_code == 201


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({}, "amount", "missing_required_parameter"),
        ({"amount": "10"}, "amount", "invalid_type"),
        ({"amount": 0}, "amount", "invalid_value"),
        ({"amount": 0.0000001}, "amount", None),
        ({"amount": 1, "count": 1001}, "count", "invalid_value"),
        ({"amount": 1, "count": 2.5}, "count", "invalid_type"),
        ({"amount": 1, "expires_at": "2001-01-01"}, "expires_at", None),
        ({"amount": 1, "expires_at": "soon"}, "expires_at", None),
        ({"amount": 1, "note": "n" * 201}, "note", "invalid_value"),
    ],
)
def test_bad_code_requests_get_openai_errors(
    server: Server, body: dict[str, Any], param: str, code: str | None
) -> None:
    found = error(post(server, "/admin/v1/codes", body), 400)
    assert (found["type"], found["param"], found["code"]) == ("invalid_request_error", param, code)


def test_bad_redemptions_get_openai_errors(server: Server) -> None:
    new_key(server, "w")
    for body, code in (({}, "missing_required_parameter"), ({"code": 5}, "invalid_type")):
        found = error(post(server, "/admin/v1/orgs/w/redeem", body), 400)
        assert (found["param"], found["code"]) == ("code", code)
    not_json = httpx.post(
        f"{server.url}/admin/v1/orgs/w/redeem", content=b"{", headers=bearer(server.admin_key)
    )
    assert error(not_json, 400)["type"] == "invalid_request_error"


def test_the_cli_makes_lists_and_redeems_codes(server: Server) -> None:
    created = server.cli("codes", "create", "--amount", "2")
    code = created.stdout.strip()
    assert created.stdout == code + "\n" and CODE.fullmatch(code)
    assert "shown once" in created.stderr
    several = server.cli("codes", "create", "--amount", "0.5", "--count", "3", "--expires", "30d")
    assert len(several.stdout.split()) == 3 and all(map(CODE.fullmatch, several.stdout.split()))

    new_key(server, "cli-org")
    before = balance(server, "cli-org")
    redeemed = server.cli("codes", "redeem", "--org", "cli-org", code)
    assert "received 2 credits" in redeemed.stdout
    assert balance(server, "cli-org") == pytest.approx(before + 2)
    again = server.cli("codes", "redeem", "--org", "cli-org", code, check=False)
    assert again.returncode != 0 and "already redeemed" in again.stderr
    bad = server.cli("codes", "create", "--amount", "1", "--expires", "2001-01-01", check=False)
    assert bad.returncode != 0 and "--expires" in bad.stderr

    rows = {r["prefix"]: r for r in json.loads(server.cli("codes", "list", "--json").stdout)}
    assert (rows[code[:12]]["status"], rows[code[:12]]["org"]) == ("redeemed", "cli-org")
    for other in several.stdout.split():
        assert rows[other[:12]]["status"] == "unused" and rows[other[:12]]["expires_at"]
    table = server.cli("codes", "list").stdout
    assert code[:12] in table and code not in table and "cli-org" in table
