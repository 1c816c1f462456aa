"""Organisations, each on a plan; keys belong to one (admin keys to none).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("plan", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("org_id", sa.String(32), nullable=True))
        batch.create_foreign_key("fk_api_keys_org", "organisations", ["org_id"], ["id"])
        batch.create_index("ix_api_keys_org_id", ["org_id"])


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index("ix_api_keys_org_id")
        batch.drop_constraint("fk_api_keys_org", type_="foreignkey")
        batch.drop_column("org_id")
    op.drop_table("organisations")
