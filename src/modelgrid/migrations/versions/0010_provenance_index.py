"""The provenance index in narrow rows: ``(band_key, ref)`` per band of a response, in place of
0009's ``(band, band_hash, content_id, choice)`` rows and their second index, at a quarter of
the cost to write (provenance/index.py). Stored responses gain their ``ref`` and are indexed
again from their stored choices.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

import orjson
import sqlalchemy as sa
from alembic import op

from modelgrid.provenance.index import content_ref, index_rows
from modelgrid.provenance.minhash import MinHasher

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_CHUNK = 1000  # responses indexed at a time


def upgrade() -> None:
    op.create_table(
        "provenance_index",
        sa.Column("band_key", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("ref", sa.BigInteger(), primary_key=True, autoincrement=False),
        sqlite_with_rowid=False,
    )
    op.add_column("stored_contents", sa.Column("ref", sa.BigInteger(), nullable=True))
    bind = op.get_bind()
    contents = sa.table(
        "stored_contents",
        sa.column("content_id", sa.String()),
        sa.column("choices", sa.Text()),
        sa.column("label", sa.Text()),
        sa.column("ref", sa.BigInteger()),
    )
    index = sa.table(
        "provenance_index",
        sa.column("band_key", sa.BigInteger()),
        sa.column("ref", sa.BigInteger()),
    )
    hasher = MinHasher()  # the one ContentStore indexes with
    after = ""
    while True:
        c = contents.c
        rows = bind.execute(
            sa.select(c.content_id, c.choices, c.label)
            .where(c.content_id > after)
            .order_by(c.content_id)
            .limit(_CHUNK)
        ).all()
        if not rows:
            break
        after = rows[-1].content_id
        responses = [(r.content_id, orjson.loads(r.choices), r.label) for r in rows]
        bind.execute(
            contents.update()
            .where(c.content_id == sa.bindparam("id"))
            .values(ref=sa.bindparam("r")),
            [{"id": r.content_id, "r": content_ref(r.content_id)} for r in rows],
        )
        found = index_rows(hasher, responses)
        if found:
            bind.execute(index.insert(), [{"band_key": k, "ref": r} for k, r in found])
    with op.batch_alter_table("stored_contents") as batch:
        batch.alter_column("ref", existing_type=sa.BigInteger(), nullable=False)
    op.create_index("ix_stored_contents_ref", "stored_contents", ["ref"])
    op.drop_table("provenance_bands")


def downgrade() -> None:
    # 0009's table comes back empty: upgrading again indexes the stored responses anew.
    op.create_table(
        "provenance_bands",
        sa.Column("band", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("band_hash", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("content_id", sa.String(160), primary_key=True),
        sa.Column("choice", sa.SmallInteger(), primary_key=True, autoincrement=False),
    )
    op.create_index("ix_provenance_bands_content_id", "provenance_bands", ["content_id"])
    op.drop_index("ix_stored_contents_ref", "stored_contents")
    with op.batch_alter_table("stored_contents") as batch:
        batch.drop_column("ref")
    op.drop_table("provenance_index")
