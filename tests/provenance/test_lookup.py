"""Provenance lookups on both databases: copies and light edits are found, unrelated text is
not, and a lookup reads only the index's candidates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelgrid.provenance.index import candidates_parameters, candidates_query
from modelgrid.provenance.lookup import THRESHOLD, Match, Provenance
from modelgrid.provenance.shingles import shingle_hashes
from modelgrid.storage.contents import ContentStore, StoredContent
from modelgrid.storage.database import Database

from .texts import CHINESE, CHINESE_EDITED, ENGLISH, ENGLISH_EDITED, UNRELATED, UNRELATED_CHINESE

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
LABEL = "本内容由人工智能生成"


def stored(number: int, text: str, org: str = "org1", label: str = LABEL) -> StoredContent:
    content_id = f"chatcmpl-{number:032x}"
    return StoredContent(
        content_id=content_id,
        created_at=T0 + timedelta(minutes=number),
        org_id=org,
        key_id="k" * 32,
        model=f"model-{number % 2}",
        messages=[{"role": "user", "content": "Tell me something."}],
        prompt=None,
        choices=(f"{text}\n\n{label}" if label else text,),
        aigc={"Label": "1", "ContentProducer": "", "ProduceID": content_id},
        label=label,
    )


CORPUS = [stored(i, text) for i, text in enumerate([*ENGLISH, *CHINESE])]


@pytest.fixture
async def provenance(db: Database, tmp_path: Path) -> AsyncIterator[Provenance]:
    store = ContentStore(db, tmp_path / "journal", flush_interval=3600)
    await store.start()
    for content in CORPUS:
        store.append(content)  # pending: the lookup flushes them first
    yield Provenance(store)
    await store.close()


async def test_an_exact_copy_is_found_with_similarity_one(provenance: Provenance) -> None:
    [match] = await provenance.lookup(ENGLISH[2])
    assert match == Match(CORPUS[2].content_id, 1.0, CORPUS[2].created_at, "model-0")
    # As served, explicit label included, it is the same copy.
    [match] = await provenance.lookup(CORPUS[2].choices[0])
    assert match.content_id == CORPUS[2].content_id and match.similarity == 1.0


async def test_a_lightly_edited_english_copy_is_found(provenance: Provenance) -> None:
    found = await provenance.lookup(ENGLISH_EDITED)
    assert [m.content_id for m in found] == [CORPUS[0].content_id]
    assert THRESHOLD < found[0].similarity < 1.0


async def test_a_chinese_copy_with_a_few_characters_changed_is_found(
    provenance: Provenance,
) -> None:
    found = await provenance.lookup(CHINESE_EDITED)
    assert [m.content_id for m in found] == [CORPUS[len(ENGLISH)].content_id]
    assert 0.6 < found[0].similarity < 1.0
    # Full-width punctuation and letters, and case, change nothing.
    [same] = await provenance.lookup(CHINESE[1].replace("，", ",").replace("。", "."))
    assert same.content_id == CORPUS[len(ENGLISH) + 1].content_id and same.similarity == 1.0


async def test_unrelated_text_is_not_found(provenance: Provenance) -> None:
    for text in (UNRELATED, UNRELATED_CHINESE, LABEL, "", "..."):
        assert await provenance.lookup(text) == []
    # Even with nothing left to rule it out, an unrelated text shares no band.
    assert await provenance.lookup(UNRELATED, threshold=0.0) == []


async def test_matches_are_ranked_limited_and_kept_to_an_organisation(
    provenance: Provenance,
) -> None:
    store = provenance.contents
    store.append(replace(stored(100, ENGLISH_EDITED), org_id="org2"))
    store.append(stored(101, ENGLISH[0] + " That is the whole story.", org="org2"))
    found = await provenance.lookup(ENGLISH[0])
    assert [m.content_id for m in found] == [
        CORPUS[0].content_id,
        stored(101, "").content_id,
        stored(100, "").content_id,
    ]
    assert found[0].similarity == 1.0 > found[1].similarity > found[2].similarity
    assert len(await provenance.lookup(ENGLISH[0], limit=2)) == 2
    only = await provenance.lookup(ENGLISH[0], org_id="org2")
    assert [m.content_id for m in only] == [stored(101, "").content_id, stored(100, "").content_id]
    assert await provenance.lookup(ENGLISH[0], org_id="nobody") == []
    strict = await provenance.lookup(ENGLISH[0], threshold=0.99)
    assert [m.content_id for m in strict] == [CORPUS[0].content_id]
    with pytest.raises(ValueError):
        await provenance.lookup(ENGLISH[0], threshold=1.5)


async def test_a_lookup_probes_the_index_and_scans_no_table(db: Database, tmp_path: Path) -> None:
    # Enough responses of one organisation, and fresh statistics, for the planners to choose
    # as they would on a real store.
    store = ContentStore(db, tmp_path / "journal", flush_interval=3600)
    await store.start()
    for i in range(4000):
        store.append(stored(i, f"response {i} says {i * 7} and {i * 13} things"))
    await store.close()
    bands = store.hasher.bands_of(shingle_hashes(ENGLISH[0]))
    query = candidates_query(len(bands), True).params(candidates_parameters(bands, "org1", 50))
    compiled = query.compile(db.engine.sync_engine, compile_kwargs={"literal_binds": True})
    async with db.engine.connect() as conn:
        await conn.execute(sa.text("ANALYZE"))
        explain = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
        result = await conn.execute(sa.text(explain + str(compiled)))
        plan = "\n".join(" ".join(str(v) for v in row) for row in result)
    if db.is_sqlite:
        assert "SEARCH provenance_index USING PRIMARY KEY (band_key=?)" in plan
        assert "SEARCH stored_contents USING INDEX ix_stored_contents_ref (ref=?)" in plan
    else:
        assert "provenance_index_pkey" in plan and "ix_stored_contents_ref" in plan, plan
    for table in ("provenance_index", "stored_contents"):
        assert f"SCAN {table}" not in plan and f"Seq Scan on {table}" not in plan
    assert "ix_stored_contents_org_id" not in plan  # never every response of the organisation
