"""Members end to end: owners, admins and members through the admin API and the CLI."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from .services import Server, run_server


@pytest.fixture(scope="module")
def org_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("members"), "") as running:
        yield running


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_owners_admins_and_members(org_server: Server) -> None:
    url, operator = f"{org_server.url}/admin/v1", bearer(org_server.admin_key)
    made = httpx.post(
        f"{url}/orgs", json={"name": "acme", "owner": "ada@acme.test"}, headers=operator
    )
    assert made.status_code == 201

    def key_for(email: str) -> str:
        r = httpx.post(f"{url}/keys", json={"org": "acme", "member": email}, headers=operator)
        assert r.status_code == 201, r.text
        key: str = r.json()["key"]
        return key

    owner = bearer(key_for("ada@acme.test"))
    # The owner adds an admin; the admin adds a member but may not make an owner.
    r = httpx.post(
        f"{url}/orgs/acme/members", json={"email": "bo@acme.test", "role": "admin"}, headers=owner
    )
    assert r.status_code == 201 and r.json()["role"] == "admin"
    admin = bearer(key_for("bo@acme.test"))
    r = httpx.post(f"{url}/orgs/acme/members", json={"email": "cy@acme.test"}, headers=admin)
    assert r.status_code == 201 and r.json()["role"] == "member"
    r = httpx.post(
        f"{url}/orgs/acme/members", json={"email": "di@acme.test", "role": "owner"}, headers=admin
    )
    assert r.status_code == 403
    member_key = key_for("cy@acme.test")
    member = bearer(member_key)
    # A member's key calls the API and manages nothing.
    assert httpx.get(f"{org_server.base_url}/models", headers=member).status_code == 200
    assert httpx.get(f"{url}/orgs/acme/members", headers=member).status_code == 403
    # Other organisations do not exist for acme's admins.
    httpx.post(f"{url}/orgs", json={"name": "globex"}, headers=operator)
    assert httpx.get(f"{url}/orgs/globex/members", headers=admin).status_code == 404
    listed = httpx.get(f"{url}/orgs/acme/members", headers=admin).json()["data"]
    assert {m["email"]: m["role"] for m in listed} == {
        "ada@acme.test": "owner",
        "bo@acme.test": "admin",
        "cy@acme.test": "member",
    }
    # Promoting the member gives their existing key an admin's powers at once.
    r = httpx.patch(f"{url}/orgs/acme/members/cy@acme.test", json={"role": "admin"}, headers=owner)
    assert r.status_code == 200
    assert httpx.get(f"{url}/orgs/acme/members", headers=member).status_code == 200
    # The last owner cannot leave; removing a member revokes their keys.
    r = httpx.delete(f"{url}/orgs/acme/members/ada@acme.test", headers=owner)
    assert r.status_code == 400 and r.json()["error"]["code"] == "last_owner"
    r = httpx.delete(f"{url}/orgs/acme/members/cy@acme.test", headers=admin)
    assert r.status_code == 200 and r.json()["keys_revoked"] == 1
    assert httpx.get(f"{org_server.base_url}/models", headers=member).status_code == 401
    # Bad input is a 400 naming the field.
    r = httpx.post(f"{url}/orgs/acme/members", json={"email": "nope"}, headers=owner)
    assert r.status_code == 400 and r.json()["error"]["param"] == "email"


def test_members_from_the_cli(org_server: Server) -> None:
    org_server.cli("orgs", "create", "initech", "--owner", "pm@initech.test")
    org_server.cli("members", "add", "--org", "initech", "--role", "member", "dev@initech.test")
    key = org_server.cli(
        "keys", "create", "--org", "initech", "--member", "dev@initech.test"
    ).stdout.strip()
    assert key.startswith("mg-")
    listed = org_server.cli("members", "list", "--org", "initech", "--json").stdout
    assert '"email":"dev@initech.test"' in listed and '"keys":1' in listed
    org_server.cli("members", "role", "--org", "initech", "dev@initech.test", "admin")
    assert (
        '"role":"admin"' in org_server.cli("members", "list", "--org", "initech", "--json").stdout
    )
    refused = org_server.cli(
        "members", "remove", "--org", "initech", "pm@initech.test", check=False
    )
    assert refused.returncode != 0 and "at least one owner" in refused.stderr
    org_server.cli("members", "remove", "--org", "initech", "dev@initech.test")
    assert httpx.get(f"{org_server.base_url}/models", headers=bearer(key)).status_code == 401
