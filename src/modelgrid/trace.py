"""What one request did, filled in along its path and logged once when it ends."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


def new_uid() -> str:
    """32 hex digits laid out as a UUIDv7 is (RFC 9562): the time in milliseconds, then 80
    random bits. Ids in time order keep the tables keyed by them (stored conversations, audit
    leaves, the ledger's request ids) appending at the end of their B-trees rather than
    writing all over them: SQLite inserted random keys into a table of 600,000 at 11 µs a
    row, sorted ones at 5 (docs/benchmarks.md)."""
    return f"{time.time_ns() // 1_000_000:012x}{random.getrandbits(80):020x}"


@dataclass(slots=True)
class Trace:
    request_id: str
    method: str
    path: str
    # The completion's id (and the request id, unless the client sent its own), drawn once
    # per request. Ids need to be unique, not secret: the process's PRNG costs a fraction of
    # a system call to os.urandom.
    uid: str = field(default_factory=new_uid)
    started: float = field(default_factory=time.perf_counter)
    route: str = "other"
    key_prefix: str | None = None
    model: str | None = None
    deployment: str | None = None
    user: str | None = None
    stream: bool = False
    tokens_in: int = 0
    tokens_cached: int = 0  # of tokens_in, served from an upstream's prompt cache
    tokens_out: int = 0
    first_token_at: float | None = None
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)  # added to the response
    # What the request holds until its response has ended, streamed or not (a concurrency
    # slot); the middleware runs these last, whatever happened.
    releases: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    outcome: str = "ok"  # ok, cancelled (the client went away), error, or an error code
    # Settles the request's reservation and writes its ledger entry: run once, before the
    # response's last bytes leave (so no response a client received lacks its entry), or
    # when the request ends otherwise.
    # With a stage's name, a step that did not answer (a cascade's draft) is settled alone.
    settlement: Callable[[str], Awaitable[None]] | None = None
    # An ``auto`` model's name, when one chose the model, and its large model.
    auto: str = ""
    auto_large: str = ""
    # Tokens of a cascade's earlier stages, settled already: in the response's usage too.
    earlier: tuple[int, int, int] = (0, 0, 0)

    async def settle(self, stage: str = "") -> None:
        settlement, self.settlement = self.settlement, None
        if settlement is not None:
            await settlement(stage)

    def mark_first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    @property
    def ttft(self) -> float | None:
        return None if self.first_token_at is None else self.first_token_at - self.started
