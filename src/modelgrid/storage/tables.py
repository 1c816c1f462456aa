"""The schema, as SQLAlchemy Core tables; Alembic's migrations create and change it."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

organisations = sa.Table(
    "organisations",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("plan", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("role", sa.String(16), nullable=False, server_default="user"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("org_id", sa.String(32), sa.ForeignKey("organisations.id"), nullable=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("member_id", sa.String(32), sa.ForeignKey("members.id"), nullable=True),
    sa.Index("ix_api_keys_member_id", "member_id"),
)

# SQLite autoincrements only an INTEGER PRIMARY KEY; PostgreSQL gets a BIGSERIAL.
_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# One row per finished request; money in micro-credits (1 credit = 1,000,000). No foreign keys:
# entries outlive the organisations and keys they name.
ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(160), nullable=False),
    sa.Column("org_id", sa.String(32), nullable=True),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("account", sa.String(64), nullable=False),  # "org:<id>" or "key:<id>"
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
    sa.Column("route", sa.String(200), nullable=False, server_default=""),
    sa.Column("baseline", sa.BigInteger(), nullable=False, server_default="0"),
    # The roll-up that counted the entry into ledger_hourly; NULL: none yet (storage/rollups.py).
    sa.Column("rollup_id", sa.BigInteger(), nullable=True),
    sa.UniqueConstraint("request_id", name="uq_ledger_request_id"),
    sa.Index("ix_ledger_account_created_at", "account", "created_at"),
    sa.Index("ix_ledger_org_id_created_at", "org_id", "created_at"),
    sa.Index("ix_ledger_created_at", "created_at"),
    # Small (about an hour of entries): what quota loads and the next roll-up read.
    sa.Index(
        "ix_ledger_unrolled",
        "account",
        "created_at",
        postgresql_where=sa.text("rollup_id IS NULL"),
        sqlite_where=sa.text("rollup_id IS NULL"),
    ),
)

# Credits given to an account: positive grants, negative corrections.
credit_grants = sa.Table(
    "credit_grants",
    metadata,
    sa.Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
    sa.Column("account", sa.String(64), nullable=False),
    sa.Column("amount", sa.BigInteger(), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # topup, starting, code, adjustment
    sa.Column("note", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_credit_grants_account", "account"),
)

# Codes worth credits, handed out by the operator; each is redeemed once. Stored as a SHA-256
# hash like keys, so a copy of the database redeems nothing.
redemption_codes = sa.Table(
    "redemption_codes",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("amount", sa.BigInteger(), nullable=False),  # micro-credits
    sa.Column("note", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("redeemed_by", sa.String(64), nullable=True),  # the account, "org:<id>"
    sa.UniqueConstraint("hash", name="uq_redemption_codes_hash"),
    sa.CheckConstraint("amount > 0", name="ck_redemption_codes_amount_positive"),
)

# The ledger summed per hour (UTC start), account, model and plan, by storage/rollups.py: what
# usage, quotas and statements read for the hours whose raw entries retention has pruned.
ledger_hourly = sa.Table(
    "ledger_hourly",
    metadata,
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
    sa.Column("route", sa.String(200), nullable=False, server_default=""),
    sa.Column("baseline", sa.BigInteger(), nullable=False, server_default="0"),
    sa.UniqueConstraint("hour", "account", "model", "plan", "route", name="uq_ledger_hourly_key"),
    sa.Index("ix_ledger_hourly_account_hour", "account", "hour"),
)

# One row: the roll-ups' counter (each roll-up marks the entries it counts with its number)
# and the newest hour boundary rolled up to.
rollup_state = sa.Table(
    "rollup_state",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("last_rollup", sa.BigInteger(), nullable=False),
    sa.Column("rolled_until", sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("id = 1", name="ck_rollup_state_one_row"),
)

members = sa.Table(
    "members",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("org_id", sa.String(32), sa.ForeignKey("organisations.id"), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("role", sa.String(16), nullable=False),  # owner, admin or member
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_members_org_id_email", "org_id", "email"),
)

overrides = sa.Table(
    "overrides",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),  # plan or price
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("body", sa.Text(), nullable=False),  # the settings, as JSON
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# The audit log (audit/store.py): an append-only Merkle tree, RFC 9162 hashing. Rows are only
# ever inserted; `modelgrid audit verify` recomputes the tree from the leaves.
# INTEGER on SQLite makes the index the rowid: leaves sit in index order.
_LEAF_INDEX = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

audit_leaves = sa.Table(
    "audit_leaves",
    metadata,
    sa.Column("leaf_index", _LEAF_INDEX, primary_key=True, autoincrement=False),
    sa.Column("content_id", sa.String(160), nullable=False),
    sa.Column("record", sa.LargeBinary(), nullable=False),  # the record's canonical bytes
    sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
    sa.UniqueConstraint("content_id", name="uq_audit_leaves_content_id"),
)

# The hash of every complete subtree above the leaves, (level, index) covering the 2**level
# leaves from index * 2**level, stored as it completes: proofs read O(log n) of them.
audit_nodes = sa.Table(
    "audit_nodes",
    metadata,
    sa.Column("level", sa.SmallInteger(), primary_key=True, autoincrement=False),
    sa.Column("node_index", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
)

# One signed checkpoint (a C2SP signed note) per commit of new leaves.
audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("tree_size", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("root", sa.LargeBinary(32), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("note", sa.Text(), nullable=False),
)

# Compliance storage (storage/contents.py, provenance/, storage/review_queue.py). No foreign
# keys, as for the ledger: records outlive the organisations and keys they name.

# One row per response: what was asked and what was served, for export and provenance.
stored_contents = sa.Table(
    "stored_contents",
    metadata,
    sa.Column("content_id", sa.String(160), primary_key=True),  # the completion's id
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("org_id", sa.String(32), nullable=True),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("request", sa.Text(), nullable=False),  # JSON: {"messages": [...]} or {"prompt": ...}
    sa.Column("choices", sa.Text(), nullable=False),  # JSON: each choice's text as served
    sa.Column("aigc", sa.Text(), nullable=False),  # JSON: the implicit label, GB 45438 Appendix E
    sa.Column("label", sa.Text(), nullable=False, server_default=""),  # the explicit label
    # The content id's 63-bit hash, which the provenance index names it by (provenance/index.py).
    sa.Column("ref", sa.BigInteger(), nullable=False),
    sa.Index("ix_stored_contents_created_at", "created_at"),
    sa.Index("ix_stored_contents_org_id_created_at", "org_id", "created_at"),
    sa.Index("ix_stored_contents_ref", "ref"),
)

# The provenance index: LSH bands of each stored choice's MinHash signature (provenance/),
# one narrow row per band of a response, the row its own key.
provenance_index = sa.Table(
    "provenance_index",
    metadata,
    sa.Column("band_key", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("ref", sa.BigInteger(), primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)

# The human review queue: what the safety review flagged, and what a reviewer decided.
review_items = sa.Table(
    "review_items",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("content_id", sa.String(160), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("org_id", sa.String(32), nullable=True),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("stage", sa.String(8), nullable=False),  # input or output
    sa.Column("reasons", sa.Text(), nullable=False),  # JSON: [{"action", "source", "detail"}]
    sa.Column("excerpt", sa.Text(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("decided_by", sa.String(64), nullable=True),  # the deciding key's id
    sa.Column("decided_by_prefix", sa.String(16), nullable=True),  # and its public prefix
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("note", sa.Text(), nullable=False, server_default=""),
    sa.CheckConstraint("stage IN ('input', 'output')", name="ck_review_items_stage"),
    sa.CheckConstraint(
        "status IN ('pending', 'approved', 'rejected')", name="ck_review_items_status"
    ),
    sa.Index("ix_review_items_status_created_at", "status", "created_at"),
    sa.Index("ix_review_items_created_at", "created_at"),
    sa.Index("ix_review_items_content_id", "content_id"),
)

# Layers' knowledge (knowledge/). Every row names its layer and the layer's organisation (NULL
# for a layer everyone or some plans see), so that retrieval filters by both in its queries.
knowledge_documents = sa.Table(
    "knowledge_documents",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("layer", sa.String(200), nullable=False),
    sa.Column("org_id", sa.String(32), nullable=True),
    sa.Column("source", sa.String(1000), nullable=False),  # the file, as it was added
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),  # of the file: unchanged ones are skipped
    sa.Column("passages", sa.Integer(), nullable=False),
    sa.Column("pages", sa.Integer(), nullable=False),
    # The model its passages were embedded with; empty: none (BM25 alone finds them).
    sa.Column("embedded_with", sa.String(200), nullable=False, server_default=""),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("layer", "source", name="uq_knowledge_documents_layer_source"),
)

knowledge_passages = sa.Table(
    "knowledge_passages",
    metadata,
    sa.Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
    sa.Column("document_id", sa.String(32), nullable=False),
    sa.Column("layer", sa.String(200), nullable=False),
    sa.Column("org_id", sa.String(32), nullable=True),
    sa.Column("ordinal", sa.Integer(), nullable=False),  # its place in the document
    sa.Column("heading", sa.String(500), nullable=False),
    sa.Column("page", sa.Integer(), nullable=True),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("length", sa.Integer(), nullable=False),  # in index terms, for BM25
    sa.Column("embedding", sa.LargeBinary(), nullable=True),  # float32, normalised
    sa.Index("ix_knowledge_passages_layer", "layer"),
    sa.Index("ix_knowledge_passages_document_id", "document_id"),
)

# BM25's postings: a term's frequency in a passage, with the passage's length, so that one
# query over (layer, term) scores every candidate.
knowledge_terms = sa.Table(
    "knowledge_terms",
    metadata,
    sa.Column("layer", sa.String(200), primary_key=True),
    sa.Column("term", sa.String(64), primary_key=True),
    sa.Column("passage_id", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("org_id", sa.String(32), nullable=True),
    sa.Column("tf", sa.Integer(), nullable=False),
    sa.Column("length", sa.Integer(), nullable=False),
    sa.Index("ix_knowledge_terms_passage_id", "passage_id"),
)

# What callers said of responses (POST /v1/feedback): outcomes for routing to learn from.
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("content_id", sa.String(160), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("org_id", sa.String(32), nullable=True),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("model", sa.String(200), nullable=False),  # the model that answered
    sa.Column("score", sa.Float(), nullable=False),  # 0 (bad) to 1 (good)
    sa.Column("comment", sa.Text(), nullable=False, server_default=""),
    sa.Index("ix_feedback_content_id", "content_id"),
    sa.Index("ix_feedback_created_at", "created_at"),
)

# Shadow evaluation: an ``auto`` request's answers from both its models (one served, one run
# off the caller's path, or a cascade's escalated draft), and what each was judged.
shadow_pairs = sa.Table(
    "shadow_pairs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("content_id", sa.String(160), nullable=False),
    sa.Column("auto", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("org_id", sa.String(32), nullable=True),
    sa.Column("served", sa.String(200), nullable=False),  # the model the caller got
    sa.Column("prompt", sa.Text(), nullable=False),
    sa.Column("small_answer", sa.Text(), nullable=False),
    sa.Column("large_answer", sa.Text(), nullable=False),
    sa.Column("reference", sa.Text(), nullable=True),
    sa.Column("small_correct", sa.Boolean(), nullable=True),  # NULL: not judged
    sa.Column("large_correct", sa.Boolean(), nullable=True),
    sa.Column("judged_by", sa.String(16), nullable=False, server_default=""),
    sa.Index("ix_shadow_pairs_auto_created_at", "auto", "created_at"),
    sa.Index("ix_shadow_pairs_content_id", "content_id"),
)

# Written by triggers (migration 0015) whenever something a server caches changes: every
# server reads the new rows each second and forgets what they name.
changes = sa.Table(
    "changes",
    metadata,
    sa.Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
    sa.Column("topic", sa.String(16), nullable=False),  # key, org, member or credits
    sa.Column("subject", sa.String(64), nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sqlite_autoincrement=True,
)
