"""The ledger's route (the auto model that chose the model) and baseline (the list price on
that auto's large model), in raw entries and in hourly roll-ups, whose key gains the route.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_KEY = ["hour", "account", "model", "plan"]
_SUMMED = ["requests", "tokens_in", "tokens_cached", "tokens_out", "list_price", "charge", "cost"]


def upgrade() -> None:
    for table in ("ledger", "ledger_hourly"):
        op.add_column(table, sa.Column("route", sa.String(200), nullable=False, server_default=""))
        op.add_column(
            table, sa.Column("baseline", sa.BigInteger(), nullable=False, server_default="0")
        )
    # SQLite cannot alter a constraint in place: batch mode copies the table.
    with op.batch_alter_table("ledger_hourly") as batch:
        batch.drop_constraint("uq_ledger_hourly_key", type_="unique")
        batch.create_unique_constraint("uq_ledger_hourly_key", [*_KEY, "route"])


def downgrade() -> None:
    # Roll-up rows that differ only by route merge back into one per old key.
    sums = ", ".join(f"SUM({c}) AS {c}" for c in _SUMMED)
    columns = ", ".join(["id", *_KEY, "org_id", *_SUMMED])
    op.execute(
        f"CREATE TABLE ledger_hourly_merged AS SELECT MIN(id) AS id, {', '.join(_KEY)}, "
        f"MAX(org_id) AS org_id, {sums} FROM ledger_hourly GROUP BY {', '.join(_KEY)}"
    )
    op.execute("DELETE FROM ledger_hourly")
    op.execute(f"INSERT INTO ledger_hourly ({columns}) SELECT {columns} FROM ledger_hourly_merged")
    op.execute("DROP TABLE ledger_hourly_merged")
    with op.batch_alter_table("ledger_hourly") as batch:
        batch.drop_constraint("uq_ledger_hourly_key", type_="unique")
        batch.create_unique_constraint("uq_ledger_hourly_key", _KEY)
    for table in ("ledger_hourly", "ledger"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("baseline")
            batch.drop_column("route")
