"""A layer's documents through ``/admin/v1/layers/{layer}/documents``: listed, added and
removed by the operator, or by an organisation's admin for the layers it sees (its own
enterprise layers' documents are stored as its organisation's). The CLI's ``knowledge``
commands do the same on the database directly."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .admin_layers import admin_caller, sees
from .admin_plans import overrides_of
from .catalogue import model_not_found
from .errors import InvalidRequest, NotFound, PermissionDenied
from .knowledge.ingest import add_document
from .knowledge.owner import NoSuchOrganisation, owner_of
from .knowledge.readers import UnreadableDocument, kind_of
from .knowledge.store import EVERYONE, KnowledgeStore
from .layers import Layer
from .routes import JSON, gateway_of, read_json
from .schemas import parse
from .storage.keys import KeyRecord
from .storage.orgs import OrgStore

_ROUTE = "/admin/v1/layers/{layer}/documents"


class NewDocument(BaseModel):
    """A document's name (its suffix says how to read it: .txt, .md, .html, .pdf) and its
    content: ``content`` as text, or ``content_base64`` for any file (a PDF)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=500)]
    content: str | None = None
    content_base64: str | None = None

    @model_validator(mode="after")
    def _one_content(self) -> NewDocument:
        if (self.content is None) == (self.content_base64 is None):
            raise ValueError("give either 'content' or 'content_base64'")
        return self


def _store(request: Request) -> KnowledgeStore:
    knowledge = gateway_of(request).knowledge
    assert knowledge is not None
    return knowledge.store


async def _layer(request: Request, caller: KeyRecord) -> Layer:
    layer_id = request.path_params["layer"]
    found = (await overrides_of(request).layers()).get(layer_id)
    if found is None or not sees(caller, found):
        raise model_not_found(layer_id)  # another organisation's: as if absent
    return found


def _own(caller: KeyRecord, layer: Layer) -> None:
    """Only the operator changes what a layer others see too holds (an organisation's admin
    reads it, as its keys may)."""
    if caller.role != "admin" and layer.settings.visibility != "org":
        raise PermissionDenied(f"The documents of '{layer.id}' are the operator's to change.")


def _org(caller: KeyRecord) -> str | None:
    return EVERYONE if caller.role == "admin" else caller.org_id


async def list_documents(request: Request) -> Response:
    caller = await admin_caller(request, _ROUTE)
    layer = await _layer(request, caller)
    documents = await _store(request).documents([layer.id], _org(caller))
    return JSON({"object": "list", "data": [d.card() for d in documents]})


async def add(request: Request) -> Response:
    caller = await admin_caller(request, _ROUTE)
    layer = await _layer(request, caller)
    _own(caller, layer)
    body: NewDocument = parse(NewDocument, await read_json(request))
    if kind_of(Path(body.name)) is None:
        raise InvalidRequest("'name' must end in .txt, .md, .html or .pdf.", param="name")
    try:
        data = (
            body.content.encode("utf-8")
            if body.content is not None
            else base64.b64decode(body.content_base64 or "", validate=True)
        )
    except (binascii.Error, ValueError):
        raise InvalidRequest("'content_base64' is not base64.", param="content_base64") from None
    try:
        owner = await owner_of(layer, _orgs(request))
    except NoSuchOrganisation as missing:
        raise InvalidRequest(f"The layer's organisation {missing} does not exist.") from None
    knowledge = gateway_of(request).knowledge
    assert knowledge is not None
    try:
        outcome = await add_document(
            knowledge.store, layer.id, owner, body.name, data, knowledge.embed, knowledge.model
        )
    except UnreadableDocument as exc:
        raise InvalidRequest(str(exc), param="content") from None
    return JSON(
        {
            "layer": layer.id,
            "name": body.name,
            "status": outcome.status,
            "id": outcome.document_id or None,
            "passages": outcome.passages,
            "pages": outcome.pages,
        },
        status_code=201 if outcome.status == "added" else 200,
    )


async def remove(request: Request) -> Response:
    caller = await admin_caller(request, _ROUTE + "/{document}")
    layer = await _layer(request, caller)
    _own(caller, layer)
    document_id = request.path_params["document"]
    if not await _store(request).remove_id(document_id, layer.id, _org(caller)):
        raise NotFound(f"No document '{document_id}' in '{layer.id}'.", param="document")
    return JSON({"id": document_id, "deleted": True})


def _orgs(request: Request) -> OrgStore:
    found: OrgStore = request.app.state.orgs
    return found


# Ahead of /admin/v1/layers/{layer:path}: that pattern would take ".../documents" as a name.
routes = [
    Route("/admin/v1/layers/{layer:path}/documents", list_documents, methods=["GET"]),
    Route("/admin/v1/layers/{layer:path}/documents", add, methods=["POST"]),
    Route("/admin/v1/layers/{layer:path}/documents/{document}", remove, methods=["DELETE"]),
]
