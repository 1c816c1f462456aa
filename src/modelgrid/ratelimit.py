"""Rate limits as GCRA (the generic cell rate algorithm), as pure arithmetic.

A limit of ``limit`` requests per ``period`` seconds admits one request every
``period / limit`` seconds on average, with bursts up to ``limit``. The whole state of a key is
one number, its theoretical arrival time (TAT), which is what lets the Redis backend decide
atomically in a few lines of Lua, and the same arithmetic run in-process for a single replica.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: float  # seconds until a request would be admitted (0 when allowed)
    reset_after: float  # seconds until the full burst is available again


def gcra(
    tat: float, now: float, limit: int, period: float, cost: int = 1
) -> tuple[Decision, float]:
    """Decide one request; return the decision and the key's new TAT (unchanged if refused)."""
    interval = period / limit
    tat = max(tat, now)
    new_tat = tat + interval * cost
    allow_at = new_tat - period
    if allow_at > now:
        reset = tat - now
        return Decision(False, limit, 0, allow_at - now, reset), tat
    remaining = math.floor((period - (new_tat - now)) / interval + 1e-9)
    return Decision(True, limit, max(0, remaining), 0.0, new_tat - now), new_tat
