"""Structured logs: one JSON object per line (the access log has its own writer)."""

from __future__ import annotations

import atexit
import logging
import queue
import sys
import time
from logging.handlers import QueueHandler, QueueListener
from typing import Any

import orjson

# Attributes every record has; anything else on a record came through ``extra=`` and is ours.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's terminal-coloured copy of the message
    "fields",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = record.__dict__.get("fields")
        if fields is not None:  # the access log's fields, in one dict: cheaper than extras
            line.update(fields)
        else:
            line.update((k, v) for k, v in record.__dict__.items() if k not in _STANDARD)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class _HandOff(QueueHandler):
    """Queues records for the writer thread as they are: formatting and writing happen there,
    off the event loop (the stock QueueHandler formats first, for pickling we do not need)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Send ModelGrid's and uvicorn's logs to stderr, as JSON lines or plain text, written by a
    thread of their own so that a slow terminal or disk never stalls a request."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    writer = QueueListener(records, handler)
    writer.start()
    atexit.register(writer.stop)  # flushes what is queued
    root = logging.getLogger()
    root.handlers[:] = [_HandOff(records)]
    root.setLevel(level.upper())
    # uvicorn's own access log would duplicate ours, without the fields that matter
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
