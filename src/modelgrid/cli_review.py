"""``modelgrid review``: the human review queue, through a running server's admin API.

Unlike ``keys`` or ``usage``, these go through the server rather than the database: a
decision is recorded under the deciding admin key and audited there, the same whether it is
made from this command or any other client.
"""

from __future__ import annotations

from typing import Any

import click
import httpx
import orjson

from .cli_options import _check, _client, key_option, url_option
from .storage.review_queue import MAX_LIST, STATUSES


def _call(url: str, key: str | None, method: str, path: str, **kwargs: Any) -> Any:
    with _client(url, key) as client:
        try:
            return _check(client.request(method, path, **kwargs))
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach {url}: {exc}") from None


def _line(item: dict[str, Any]) -> str:
    sources = ",".join(sorted({r.get("source", "?") for r in item["reasons"]})) or "-"
    excerpt = " ".join(item["excerpt"].split())
    if len(excerpt) > 60:
        excerpt = excerpt[:59] + "…"
    return (
        f"{item['id']}  {item['created_at'][:19]}  {item['status']:8}  {item['stage']:6}  "
        f"{item['model']}  {sources}  {excerpt}"
    )


@click.group()
def review() -> None:
    """The human review queue: what the safety review flagged."""


@review.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only items with this status.")
@click.option("--limit", type=click.IntRange(1, MAX_LIST), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON list.")
@url_option
@key_option
def review_list(status: str | None, limit: int, as_json: bool, url: str, key: str | None) -> None:
    """List review items, newest first."""
    params: dict[str, str | int] = {"limit": limit}
    if status:
        params["status"] = status
    found = _call(url, key, "GET", "/admin/v1/review", params=params)["data"]
    if as_json:
        click.echo(orjson.dumps(found).decode())
        return
    for item in found:
        click.echo(_line(item))


@review.command("decide")
@click.argument("item_id")
@click.argument("decision", type=click.Choice(["approve", "reject"]))
@click.option("--note", default="", help="Why (kept with the decision).")
@url_option
@key_option
def review_decide(item_id: str, decision: str, note: str, url: str, key: str | None) -> None:
    """Approve or reject a pending item (recorded under your key, and audited)."""
    body = {"decision": decision, "note": note}
    item = _call(url, key, "POST", f"/admin/v1/review/{item_id}", json=body)
    click.echo(f"{item['id']} {item['status']} by {item['decided_by_prefix']}.")
