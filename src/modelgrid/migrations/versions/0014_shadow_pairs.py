"""Shadow evaluation's pairs of answers, the training data of ``auto`` models.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shadow_pairs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("content_id", sa.String(160), nullable=False),
        sa.Column("auto", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.String(32), nullable=True),
        sa.Column("served", sa.String(200), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("small_answer", sa.Text(), nullable=False),
        sa.Column("large_answer", sa.Text(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("small_correct", sa.Boolean(), nullable=True),
        sa.Column("large_correct", sa.Boolean(), nullable=True),
        sa.Column("judged_by", sa.String(16), nullable=False, server_default=""),
    )
    op.create_index("ix_shadow_pairs_auto_created_at", "shadow_pairs", ["auto", "created_at"])
    op.create_index("ix_shadow_pairs_content_id", "shadow_pairs", ["content_id"])


def downgrade() -> None:
    op.drop_table("shadow_pairs")
