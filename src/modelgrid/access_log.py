"""The access log: one line per request, built on the request path, written by a thread.

It skips the logging module on purpose: a LogRecord per request and a writer thread woken for
every line, which then contends for the GIL with the event loop) cost a fifth of the gateway's
throughput in front of a fast upstream (benchmarks/overhead.py). Here a request costs one
``orjson.dumps`` and a list append; the writer wakes ``interval`` times a second at most and
writes what has gathered in one call.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

import orjson

from .trace import Trace


class AccessLog:
    def __init__(
        self,
        stream: TextIO | None = None,
        fmt: str = "json",
        enabled: bool = True,
        interval: float = 0.05,
    ) -> None:
        self._stream = stream or sys.stderr
        self._text = fmt == "text"
        self.enabled = enabled
        self._interval = interval
        self._lines: list[str] = []  # appends and swaps are atomic under the GIL
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._clock = _Clock()

    def start(self) -> None:
        if self.enabled and self._writer is None:
            self._writer = threading.Thread(target=self._drain, name="access-log", daemon=True)
            self._writer.start()

    def close(self) -> None:
        """Write what is queued, then stop."""
        if self._writer is not None:
            self._stop.set()
            self._writer.join(5)
            self._writer = None

    def write(self, trace: Trace, seconds: float) -> None:
        if not self.enabled:
            return
        fields = _fields(trace, seconds)
        if self._text:
            line = "request " + " ".join(f"{k}={v}" for k, v in fields.items())
        else:
            line = orjson.dumps(
                {
                    "ts": self._clock.now(),
                    "level": "info",
                    "logger": "modelgrid.access",
                    "msg": "request",
                }
                | fields
            ).decode()
        if self._writer is None:  # not started (a test app, say): write at once
            self._stream.write(line + "\n")
            return
        self._lines.append(line)

    def _drain(self) -> None:
        while True:
            stopping = self._stop.wait(self._interval)
            lines, self._lines = self._lines, []
            if lines:
                self._stream.write("\n".join(lines) + "\n")
                self._stream.flush()
            if stopping:
                return


def _fields(trace: Trace, seconds: float) -> dict[str, Any]:
    ttft = trace.ttft
    return {
        "request_id": trace.request_id,
        "method": trace.method,
        "path": trace.path,
        "status": trace.status,
        "outcome": trace.outcome,
        "key_prefix": trace.key_prefix,
        "model": trace.model,
        "deployment": trace.deployment,
        "user": trace.user,
        "stream": trace.stream,
        "tokens_in": trace.tokens_in,
        "tokens_out": trace.tokens_out,
        "ttft_ms": None if ttft is None else round(ttft * 1000, 2),
        "duration_ms": round(seconds * 1000, 2),
    }


class _Clock:
    """ISO 8601 UTC timestamps to the millisecond; the part up to the second is formatted once
    a second (``strftime`` per line was a measurable share of a request's time)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((now - second) * 1000):03d}Z"
