"""One way to reach Redis for the limiter and the counters."""

from __future__ import annotations

from typing import Any

# Enough for every request in flight on a replica to be answered within a round trip or two;
# more only adds Redis connections. Requests beyond them wait for a free connection (the
# default pool would fail them with "Too many connections").
MAX_CONNECTIONS = 64


def connect(url: str) -> Any:
    import redis.asyncio as redis

    pool = redis.BlockingConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, timeout=30)
    return redis.Redis(connection_pool=pool)
