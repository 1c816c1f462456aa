"""The ledger: one row per finished request, and the credits granted to each account.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# SQLite autoincrements only an INTEGER PRIMARY KEY; PostgreSQL gets a BIGSERIAL.
_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger",
        sa.Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(160), nullable=False),
        sa.Column("org_id", sa.String(32), nullable=True),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("deployment", sa.String(200), nullable=True),
        sa.Column("plan", sa.String(64), nullable=False),
        sa.Column("tokens_in", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("tokens_cached", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("tokens_out", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("list_price", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("charge", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("cost", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("request_id", name="uq_ledger_request_id"),
    )
    op.create_index("ix_ledger_account_created_at", "ledger", ["account", "created_at"])
    op.create_index("ix_ledger_org_id_created_at", "ledger", ["org_id", "created_at"])
    op.create_index("ix_ledger_created_at", "ledger", ["created_at"])
    op.create_table(
        "credit_grants",
        sa.Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("note", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_credit_grants_account", "credit_grants", ["account"])


def downgrade() -> None:
    op.drop_index("ix_credit_grants_account", "credit_grants")
    op.drop_table("credit_grants")
    op.drop_index("ix_ledger_created_at", "ledger")
    op.drop_index("ix_ledger_org_id_created_at", "ledger")
    op.drop_index("ix_ledger_account_created_at", "ledger")
    op.drop_table("ledger")
