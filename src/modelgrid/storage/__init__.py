"""Persistent state: SQLite or PostgreSQL through SQLAlchemy, schema by Alembic."""
