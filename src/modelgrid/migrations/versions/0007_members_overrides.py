"""Organisation members (owner, admin, member) behind keys; plans and prices set through the
admin API.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "members",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("org_id", sa.String(32), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_members_org_id_email", "members", ["org_id", "email"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("member_id", sa.String(32), nullable=True))
        batch.create_foreign_key("fk_api_keys_member", "members", ["member_id"], ["id"])
        batch.create_index("ix_api_keys_member_id", ["member_id"])
    op.create_table(
        "overrides",
        sa.Column("kind", sa.String(16), primary_key=True),  # plan or price
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),  # the settings, as JSON
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("overrides")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index("ix_api_keys_member_id")
        batch.drop_constraint("fk_api_keys_member", type_="foreignkey")
        batch.drop_column("member_id")
    op.drop_index("ix_members_org_id_email", table_name="members")
    op.drop_table("members")
