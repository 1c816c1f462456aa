"""Whose a layer's documents are: the id of the organisation an enterprise layer belongs to."""

from __future__ import annotations

from ..layers import Layer
from ..storage.orgs import OrgStore


class NoSuchOrganisation(LookupError):
    pass


async def owner_of(layer: Layer, orgs: OrgStore) -> str | None:
    """The organisation's id for a layer one organisation sees (its settings may name it by
    name or id); None for a layer everyone, or some plans, may see. Raises
    ``NoSuchOrganisation`` when the organisation does not exist (yet)."""
    if layer.settings.visibility != "org":
        return None
    wanted = layer.settings.org
    for org in await orgs.list_all():
        if wanted in (org.name, org.id):
            return org.id
    raise NoSuchOrganisation(wanted)
