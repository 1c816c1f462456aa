"""Changes: a row for every change to what a cached key or balance depends on, written by the
database itself (triggers), so that every server's caches follow changes made anywhere: through
the admin API, the CLI, another replica, or by hand in SQL.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# (table, topic, column naming the subject, events). A key's cache entry is found by its hash;
# an organisation's plan and a member's role reach every key of theirs; a grant changes one
# account's credits. Inserting a key or an organisation changes nothing cached: unknown keys
# are never cached.
WATCHED = [
    ("api_keys", "key", "hash", ("UPDATE", "DELETE")),
    ("organisations", "org", "id", ("UPDATE", "DELETE")),
    ("members", "member", "id", ("UPDATE", "DELETE")),
    ("credit_grants", "credits", "account", ("INSERT", "UPDATE", "DELETE")),
]


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        # Ids never reused, even once the newest rows are pruned: readers keep a cursor.
        sqlite_autoincrement=True,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION modelgrid_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO changes (topic, subject) VALUES (
                    TG_ARGV[0],
                    (CASE WHEN TG_OP = 'INSERT' THEN to_jsonb(NEW) ELSE to_jsonb(OLD) END)
                        ->> TG_ARGV[1]
                );
                RETURN NULL;
            END $$
            """
        )
        for table, topic, column, events in WATCHED:
            op.execute(
                f"CREATE TRIGGER {table}_changed AFTER {' OR '.join(events)} ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION modelgrid_changed('{topic}', '{column}')"
            )
        return
    for table, topic, column, events in WATCHED:
        for event in events:
            row = "NEW" if event == "INSERT" else "OLD"
            op.execute(
                f"CREATE TRIGGER {table}_{event.lower()}_changed AFTER {event} ON {table} "
                f"BEGIN INSERT INTO changes (topic, subject) VALUES ('{topic}', {row}.{column}); "
                "END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, *_ in WATCHED:
            op.execute(f"DROP TRIGGER {table}_changed ON {table}")
        op.execute("DROP FUNCTION modelgrid_changed()")
    else:
        for table, _, _, events in WATCHED:
            for event in events:
                op.execute(f"DROP TRIGGER {table}_{event.lower()}_changed")
    op.drop_table("changes")
