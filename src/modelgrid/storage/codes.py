"""Redemption codes: single-use codes worth credits, as One API and New API hand out.

A code is ``mgc-`` and 32 URL-safe characters (192 random bits), stored like an API key as its
SHA-256 hash and a public prefix, never in clear text. Redeeming one marks it and grants its
credits in a single transaction, through an ``UPDATE`` that matches only an unredeemed,
unexpired code: of any number of concurrent redemptions, on SQLite or PostgreSQL, exactly one
changes the row, and only that one grants.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa

from ..keys import hash_key
from .database import Database
from .tables import credit_grants, redemption_codes

CODE_PREFIX = "mgc-"
PUBLIC_PREFIX_LENGTH = 12  # "mgc-" and 8 random characters: enough to tell codes apart
MAX_COUNT = 1000

Reason = Literal["unknown", "already redeemed", "expired"]


class CodeRejected(Exception):
    """The code cannot be redeemed; ``reason`` says why."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(f"code {reason}")
        self.reason: Reason = reason


@dataclass(frozen=True, slots=True)
class CodeRecord:
    id: str
    prefix: str
    amount: int  # micro-credits
    note: str
    created_at: datetime
    expires_at: datetime | None
    redeemed_at: datetime | None
    redeemed_by: str | None  # the account, "org:<id>"

    def status(self, now: datetime) -> Literal["redeemed", "expired", "unused"]:
        if self.redeemed_at is not None:
            return "redeemed"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "unused"


def new_code() -> str:
    return CODE_PREFIX + secrets.token_urlsafe(24)


def public_prefix(code: str) -> str:
    return code[:PUBLIC_PREFIX_LENGTH]


class CodeStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        amount: int,
        count: int = 1,
        expires_at: datetime | None = None,
        note: str = "",
    ) -> list[str]:
        """Store ``count`` new codes worth ``amount`` micro-credits each and return them: this is
        the only time they exist in clear text. The API and the CLI refuse an expiry in the past;
        this does not, so that an already expired code can be made on purpose."""
        if amount <= 0:
            raise ValueError("a code's amount must be positive")
        if not 1 <= count <= MAX_COUNT:
            raise ValueError(f"count must be from 1 to {MAX_COUNT}")
        codes = [new_code() for _ in range(count)]
        now = datetime.now(UTC)
        rows = [
            {
                "id": uuid.uuid4().hex,
                "prefix": public_prefix(code),
                "hash": hash_key(code),
                "amount": amount,
                "note": note,
                "created_at": now,
                "expires_at": _utc(expires_at),
            }
            for code in codes
        ]
        async with self._db.begin_write() as conn:
            await conn.execute(redemption_codes.insert(), rows)
        return codes

    async def list_all(self) -> list[CodeRecord]:
        """Every code, oldest first (codes made together by prefix), without the codes."""
        c = redemption_codes.c
        query = sa.select(
            c.id,
            c.prefix,
            c.amount,
            c.note,
            c.created_at,
            c.expires_at,
            c.redeemed_at,
            c.redeemed_by,
        ).order_by(c.created_at, c.prefix)
        async with self._db.engine.connect() as conn:
            return [_record(row) for row in await conn.execute(query)]

    async def redeem(self, code: str, account: str) -> int:
        """Mark the code redeemed by ``account`` and grant its credits to it, in one
        transaction; return the micro-credits granted, or raise ``CodeRejected``."""
        digest = hash_key(code.strip())  # pasted codes often bring a newline along
        now = datetime.now(UTC)
        c = redemption_codes.c
        claim = (
            redemption_codes.update()
            .where(
                c.hash == digest,
                c.redeemed_at.is_(None),
                sa.or_(c.expires_at.is_(None), c.expires_at > now),
            )
            .values(redeemed_at=now, redeemed_by=account)
        )
        async with self._db.begin_write() as conn:
            # The conditional UPDATE is the whole guard: PostgreSQL makes a second redemption
            # wait on the row lock and then re-check the WHERE against the committed row;
            # SQLite lets one writer in at a time. Either way a loser matches no row.
            claimed = (await conn.execute(claim)).rowcount == 1
            row = (
                await conn.execute(
                    sa.select(c.prefix, c.amount, c.redeemed_at).where(c.hash == digest)
                )
            ).first()
            if not claimed:
                if row is None:
                    raise CodeRejected("unknown")
                raise CodeRejected("expired" if row.redeemed_at is None else "already redeemed")
            assert row is not None
            await conn.execute(
                credit_grants.insert().values(
                    account=account,
                    amount=row.amount,
                    kind="code",
                    note=f"code {row.prefix}",
                    created_at=now,
                )
            )
        return int(row.amount)


def _utc(value: datetime | None) -> datetime | None:
    """SQLite keeps a datetime's wall-clock digits and compares them as text, so everything
    crosses into the database in UTC, and naive values come back taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _record(row: sa.Row[*tuple[Any, ...]]) -> CodeRecord:
    return CodeRecord(
        id=row.id,
        prefix=row.prefix,
        amount=int(row.amount),
        note=row.note,
        created_at=row.created_at.replace(tzinfo=row.created_at.tzinfo or UTC),
        expires_at=_utc(row.expires_at),
        redeemed_at=_utc(row.redeemed_at),
        redeemed_by=row.redeemed_by,
    )
