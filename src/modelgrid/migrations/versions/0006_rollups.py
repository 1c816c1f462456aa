"""Hourly roll-ups of the ledger, and which roll-up counted each entry.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# SQLite autoincrements only an INTEGER PRIMARY KEY; PostgreSQL gets a BIGSERIAL.
_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_UNROLLED = sa.text("rollup_id IS NULL")


def upgrade() -> None:
    op.add_column("ledger", sa.Column("rollup_id", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_ledger_unrolled",
        "ledger",
        ["account", "created_at"],
        postgresql_where=_UNROLLED,
        sqlite_where=_UNROLLED,
    )
    op.create_table(
        "ledger_hourly",
        sa.Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(32), nullable=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("plan", sa.String(64), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("tokens_in", sa.BigInteger(), nullable=False),
        sa.Column("tokens_cached", sa.BigInteger(), nullable=False),
        sa.Column("tokens_out", sa.BigInteger(), nullable=False),
        sa.Column("list_price", sa.BigInteger(), nullable=False),
        sa.Column("charge", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("hour", "account", "model", "plan", name="uq_ledger_hourly_key"),
    )
    op.create_index("ix_ledger_hourly_account_hour", "ledger_hourly", ["account", "hour"])
    state = op.create_table(
        "rollup_state",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("last_rollup", sa.BigInteger(), nullable=False),
        sa.Column("rolled_until", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name="ck_rollup_state_one_row"),
    )
    op.bulk_insert(state, [{"id": 1, "last_rollup": 0, "rolled_until": None}])


def downgrade() -> None:
    op.drop_table("rollup_state")
    op.drop_index("ix_ledger_hourly_account_hour", "ledger_hourly")
    op.drop_table("ledger_hourly")
    op.drop_index("ix_ledger_unrolled", "ledger")
    op.drop_column("ledger", "rollup_id")
