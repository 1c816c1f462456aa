"""Layers' knowledge: documents, their passages, and BM25 postings (knowledge/).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "knowledge_documents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("layer", sa.String(200), nullable=False),
        sa.Column("org_id", sa.String(32), nullable=True),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("passages", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        # The model its passages were embedded with; empty: none (BM25 alone finds them).
        sa.Column("embedded_with", sa.String(200), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("layer", "source", name="uq_knowledge_documents_layer_source"),
    )
    op.create_table(
        "knowledge_passages",
        sa.Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("document_id", sa.String(32), nullable=False),
        sa.Column("layer", sa.String(200), nullable=False),
        sa.Column("org_id", sa.String(32), nullable=True),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("heading", sa.String(500), nullable=False),
        sa.Column("page", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
    )
    op.create_index("ix_knowledge_passages_layer", "knowledge_passages", ["layer"])
    op.create_index("ix_knowledge_passages_document_id", "knowledge_passages", ["document_id"])
    op.create_table(
        "knowledge_terms",
        sa.Column("layer", sa.String(200), primary_key=True),
        sa.Column("term", sa.String(64), primary_key=True),
        sa.Column("passage_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("org_id", sa.String(32), nullable=True),
        sa.Column("tf", sa.Integer(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
    )
    op.create_index("ix_knowledge_terms_passage_id", "knowledge_terms", ["passage_id"])


def downgrade() -> None:
    op.drop_table("knowledge_terms")
    op.drop_table("knowledge_passages")
    op.drop_table("knowledge_documents")
