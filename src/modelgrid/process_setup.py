"""What every ModelGrid process does first with its settings, whichever way it started (``serve``,
a worker's factory, the writer process): its logs' level and format, and the allocator's fixed
threshold for large blocks (allocator.py)."""

from __future__ import annotations

from .allocator import fix_mmap_threshold
from .logs import configure_logging
from .settings import Settings


def set_up_process(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format)
    fix_mmap_threshold(settings.memory_mmap_threshold)
