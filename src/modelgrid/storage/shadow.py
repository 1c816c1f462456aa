"""Shadow evaluation's pairs: both models' answers to one ``auto`` request, and the verdicts
on them, kept as a router's training data (RouteLLM's table: a prompt, whether each model
did well, the small model's answer)."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from .database import Database
from .tables import feedback, shadow_pairs

GOOD_FEEDBACK = 0.5  # a served answer scored at least this by its caller did well


@dataclass(frozen=True, slots=True)
class ShadowPair:
    content_id: str
    auto: str
    org_id: str | None
    served: str
    prompt: str
    small_answer: str
    large_answer: str
    reference: str | None = None
    small_correct: bool | None = None
    large_correct: bool | None = None
    judged_by: str = ""  # reference, judge, or "" (feedback may still settle it)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A pair as training data: each model's verdict, from the pair's own judging or, for
    the served model, from its caller's feedback."""

    prompt: str
    small_answer: str
    large_answer: str
    small_correct: bool
    large_correct: bool


class ShadowStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, pair: ShadowPair) -> str:
        made = "sh_" + secrets.token_hex(8)
        row = asdict(pair) | {"id": made, "created_at": datetime.now(UTC)}
        async with self._db.begin_write() as conn:
            await conn.execute(shadow_pairs.insert().values(**row))
        return made

    async def pairs(self, auto: str) -> list[ShadowPair]:
        s = shadow_pairs.c
        query = sa.select(*(s[f] for f in ShadowPair.__dataclass_fields__)).where(s.auto == auto)
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(s.created_at, s.id))).all()
        return [ShadowPair(**row._mapping) for row in rows]

    async def outcomes(self, auto: str, small: str, large: str) -> list[Outcome]:
        """The pairs of ``auto`` whose two verdicts are known, oldest first."""
        s, f = shadow_pairs.c, feedback.c
        scored = (
            sa.select(f.content_id, f.model, sa.func.avg(f.score).label("score"))
            .group_by(f.content_id, f.model)
            .subquery()
        )
        query = (
            sa.select(shadow_pairs, scored.c.score)
            .outerjoin(
                scored,
                sa.and_(scored.c.content_id == s.content_id, scored.c.model == s.served),
            )
            .where(s.auto == auto)
            .order_by(s.created_at, s.id)
        )
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        found = []
        for row in rows:
            liked = None if row.score is None else row.score >= GOOD_FEEDBACK
            small_ok, large_ok = row.small_correct, row.large_correct
            if small_ok is None and row.served == small:
                small_ok = liked
            if large_ok is None and row.served == large:
                large_ok = liked
            if small_ok is not None and large_ok is not None:
                found.append(
                    Outcome(row.prompt, row.small_answer, row.large_answer, small_ok, large_ok)
                )
        return found
