"""Callers' feedback on responses: a score from 0 (bad) to 1 (good) and a comment, kept with
the model that answered, as outcomes for routing to learn from."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from .contents import as_utc
from .database import Database
from .tables import feedback

MAX_LIST = 1000


@dataclass(frozen=True, slots=True)
class Feedback:
    id: str
    content_id: str
    created_at: datetime
    org_id: str | None
    key_id: str | None
    model: str
    score: float
    comment: str

    def card(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "response": self.content_id,
            "created_at": self.created_at.isoformat(),
            "model": self.model,
            "score": self.score,
            "comment": self.comment,
        }


class FeedbackStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self,
        content_id: str,
        org_id: str | None,
        key_id: str | None,
        model: str,
        score: float,
        comment: str,
    ) -> Feedback:
        made = Feedback(
            "fb_" + secrets.token_hex(8),
            content_id,
            datetime.now(UTC),
            org_id,
            key_id,
            model,
            score,
            comment,
        )
        async with self._db.begin_write() as conn:
            await conn.execute(feedback.insert().values(**_row(made)))
        return made

    async def recent(self, limit: int = 100, org_id: str | None = None) -> list[Feedback]:
        """The newest first; an organisation's own when ``org_id`` is given."""
        query = sa.select(feedback).order_by(feedback.c.created_at.desc())
        if org_id is not None:
            query = query.where(feedback.c.org_id == org_id)
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query.limit(min(limit, MAX_LIST)))).all()
        return [
            Feedback(**(dict(row._mapping) | {"created_at": as_utc(row.created_at)}))
            for row in rows
        ]


def _row(f: Feedback) -> dict[str, Any]:
    return {
        "id": f.id,
        "content_id": f.content_id,
        "created_at": f.created_at,
        "org_id": f.org_id,
        "key_id": f.key_id,
        "model": f.model,
        "score": f.score,
        "comment": f.comment,
    }
