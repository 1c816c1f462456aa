"""``modelgrid knowledge``: a layer's documents, added, listed and removed on the database
directly (a running server answers from them at once)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
import orjson
from pydantic import ValidationError

from .catalogue import Catalogue
from .cli_options import _settings, config_option
from .knowledge.embedding import embedder_of
from .knowledge.ingest import files_of, ingest
from .knowledge.owner import NoSuchOrganisation, owner_of
from .knowledge.store import EVERYONE, KnowledgeStore
from .layer_settings import LayerSettings
from .layers import Layer, combined
from .settings import Settings
from .storage.database import Database
from .storage.orgs import OrgStore
from .storage.overrides import OverrideStore

T = TypeVar("T")


def _run(config: str | None, action: Callable[[Settings, Database], Awaitable[T]]) -> T:
    settings = _settings(config)

    async def run() -> T:
        db = Database(settings.resolved_database_url)
        try:
            await db.migrate()
            return await action(settings, db)
        finally:
            await db.close()

    return asyncio.run(run())


async def _layers(settings: Settings, db: Database) -> dict[str, Layer]:
    """The config's layers and those made through the admin API."""
    stored: dict[str, LayerSettings] = {}
    for layer_id, body in (await OverrideStore(db).all("layer")).items():
        try:
            stored[layer_id] = LayerSettings.model_validate(body)
        except ValidationError:
            continue  # the server leaves it out too, and says why in its log
    return combined(settings.models, settings.layers, stored)[0]


async def _layer(settings: Settings, db: Database, layer_id: str) -> Layer:
    layers = await _layers(settings, db)
    if layer_id not in layers:
        known = ", ".join(sorted(layers)) or "none configured"
        raise click.ClickException(f"no layer {layer_id!r} (layers: {known})")
    return layers[layer_id]


async def _owner(db: Database, layer: Layer) -> str | None:
    try:
        return await owner_of(layer, OrgStore(db))
    except NoSuchOrganisation as missing:
        raise click.ClickException(
            f"layer {layer.id!r} belongs to organisation {missing}, which does not exist yet: "
            f"create it first (modelgrid orgs create {missing})"
        ) from None


@click.group()
def knowledge() -> None:
    """A layer's knowledge: the documents its answers are grounded in."""


@knowledge.command("add")
@config_option
@click.argument("layer")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def knowledge_add(config: str | None, layer: str, paths: tuple[Path, ...]) -> None:
    """Add files (text, Markdown, HTML, PDF; directories are searched) to LAYER. A file added
    before is re-indexed only if its content changed."""

    async def action(settings: Settings, db: Database) -> int:
        target = await _layer(settings, db, layer)
        owner = await _owner(db, target)
        files = files_of(paths)
        model = settings.knowledge.embedding_model
        # The embedding model runs here, as the server would run it (loaded in this process
        # for the embedded engine, asked over HTTP for an upstream).
        router = Catalogue.from_settings(settings).resolve(model).router if model else None
        if router is not None:
            await router.start()
        try:
            with click.progressbar(length=len(files), label="indexing", file=sys.stderr) as bar:
                done = await ingest(
                    KnowledgeStore(db),
                    layer,
                    owner,
                    files,
                    lambda _: bar.update(1),
                    embedder_of(router) if router is not None else None,
                    model,
                )
        finally:
            if router is not None:
                await router.close()
        click.echo(
            f"{layer}: {done.added} added, {done.updated} updated, {done.unchanged} unchanged; "
            f"{done.passages} passages from {done.pages} pages in {done.seconds:.1f} s",
            err=True,
        )
        for source, why in done.failed:
            click.echo(f"skipped {source}: {why}", err=True)
        return 1 if done.failed else 0

    sys.exit(_run(config, action))


@knowledge.command("list")
@config_option
@click.argument("layer", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON list.")
def knowledge_list(config: str | None, layer: str | None, as_json: bool) -> None:
    """The documents of LAYER (default: of every layer)."""

    async def action(settings: Settings, db: Database) -> None:
        layers = (
            [(await _layer(settings, db, layer)).id] if layer else list(await _layers(settings, db))
        )
        documents = await KnowledgeStore(db).documents(layers, EVERYONE)
        if as_json:
            rows = [d.card() for d in documents]
            click.echo(orjson.dumps(rows).decode())
            return
        for d in documents:
            click.echo(f"{d.layer}\t{d.source}\t{d.passages} passages\t{d.title}")

    _run(config, action)


@knowledge.command("remove")
@config_option
@click.argument("layer")
@click.argument("source")
def knowledge_remove(config: str | None, layer: str, source: str) -> None:
    """Remove SOURCE (as it was added) from LAYER."""

    async def action(settings: Settings, db: Database) -> bool:
        return await KnowledgeStore(db).remove((await _layer(settings, db, layer)).id, source)

    if not _run(config, action):
        raise click.ClickException(f"{layer} has no document {source!r}")
    click.echo(f"removed {source} from {layer}", err=True)
