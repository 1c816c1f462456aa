"""Compliance storage: stored conversations, their provenance index (LSH bands) and the human
review queue.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stored_contents",
        sa.Column("content_id", sa.String(160), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(32), nullable=True),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("choices", sa.Text(), nullable=False),
        sa.Column("aigc", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False, server_default=""),
    )
    op.create_index("ix_stored_contents_created_at", "stored_contents", ["created_at"])
    op.create_index(
        "ix_stored_contents_org_id_created_at", "stored_contents", ["org_id", "created_at"]
    )
    op.create_table(
        "provenance_bands",
        sa.Column("band", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("band_hash", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("content_id", sa.String(160), primary_key=True),
        sa.Column("choice", sa.SmallInteger(), primary_key=True, autoincrement=False),
    )
    op.create_index("ix_provenance_bands_content_id", "provenance_bands", ["content_id"])
    op.create_table(
        "review_items",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("content_id", sa.String(160), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(32), nullable=True),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("stage", sa.String(8), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_by_prefix", sa.String(16), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.CheckConstraint("stage IN ('input', 'output')", name="ck_review_items_stage"),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected')", name="ck_review_items_status"
        ),
    )
    op.create_index("ix_review_items_status_created_at", "review_items", ["status", "created_at"])
    op.create_index("ix_review_items_created_at", "review_items", ["created_at"])
    op.create_index("ix_review_items_content_id", "review_items", ["content_id"])


def downgrade() -> None:
    op.drop_table("review_items")
    op.drop_table("provenance_bands")
    op.drop_table("stored_contents")
