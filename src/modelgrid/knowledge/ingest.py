"""Files into a layer's knowledge: read, cut into passages and indexed; a file whose content
has not changed since it was last added is skipped, and a changed one replaces its old self."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from .chunking import passages
from .readers import UnreadableDocument, kind_of, read
from .retrieval import Embed
from .store import KnowledgeStore

_EMBED_BATCH = 16


@dataclass
class Ingested:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    passages: int = 0
    pages: int = 0
    seconds: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (source, why)


def files_of(paths: Iterable[Path]) -> list[Path]:
    """The files named, and those of a kind it reads under the directories named, in order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and kind_of(p))
        else:
            found.append(path)
    return found


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Literal["added", "updated", "unchanged"]
    document_id: str  # empty when unchanged
    passages: int
    pages: int


async def add_document(
    store: KnowledgeStore,
    layer: str,
    org_id: str | None,
    source: str,
    data: bytes,
    embed: Embed | None = None,
    embedded_with: str = "",
) -> Outcome:
    """Add one document's content under the name ``source`` (whose suffix says how to read
    it); raises ``UnreadableDocument``."""
    digest = hashlib.sha256(data).hexdigest()
    before = await store.digest(layer, source)
    if before == (digest, embedded_with if embed is not None else ""):
        return Outcome("unchanged", "", 0, 0)
    document = await asyncio.to_thread(read, Path(source), data)
    cut = passages(document.sections)
    vectors = None
    if embed is not None and cut:
        batches = [cut[i : i + _EMBED_BATCH] for i in range(0, len(cut), _EMBED_BATCH)]
        vectors = np.concatenate([await embed([p.text for p in b]) for b in batches])
    document_id = await store.put(
        layer, org_id, source, document.title, digest, document.pages, cut, vectors, embedded_with
    )
    status: Literal["added", "updated"] = "added" if before is None else "updated"
    return Outcome(status, document_id, len(cut), document.pages)


async def ingest(
    store: KnowledgeStore,
    layer: str,
    org_id: str | None,
    files: Iterable[Path],
    progress: Callable[[Path], None] = lambda _: None,
    embed: Embed | None = None,
    embedded_with: str = "",
) -> Ingested:
    """Add ``files`` to ``layer`` (owned by ``org_id``); each is named by its path as given.
    With ``embed`` (the model ``embedded_with``'s), passages are embedded too, and a file
    embedded before by another model, or by none, is indexed again."""
    done = Ingested()
    started = time.perf_counter()
    for path in files:
        try:
            outcome = await add_document(
                store, layer, org_id, str(path), path.read_bytes(), embed, embedded_with
            )
        except OSError as exc:
            done.failed.append((str(path), exc.strerror or str(exc)))
        except UnreadableDocument as exc:
            done.failed.append((str(path), str(exc)))
        else:
            if outcome.status == "unchanged":
                done.unchanged += 1
            elif outcome.status == "added":
                done.added += 1
            else:
                done.updated += 1
            done.passages += outcome.passages
            done.pages += outcome.pages
        progress(path)
    done.seconds = time.perf_counter() - started
    return done
