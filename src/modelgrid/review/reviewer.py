"""The review's shell on the request path: term lists loaded, and reloaded when they change,
without a restart; the named policies, compiled once; the optional guard model."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

from ..engines.base import Engine
from .config import SAMPLE_TERMS, ReviewSettings
from .data import sample_terms_path
from .guard import Guard
from .policy import NOT_REVIEWED, StagePolicies, compile_policy, strictest
from .terms import Term, TermMatcher, load_terms

log = logging.getLogger("modelgrid.review")


class Reviewer:
    def __init__(self, settings: ReviewSettings, guard: Engine | None = None) -> None:
        """``guard``: the engine of the catalogue's guard model, if the settings name one."""
        self.settings = settings
        self.matcher = TermMatcher([])
        self.guard = Guard(settings.guard, guard) if guard is not None else None
        self._compiled = {
            name: compile_policy(policy) for name, policy in settings.all_policies.items()
        }
        self._combined: dict[tuple[str, tuple[str, ...]], StagePolicies] = {}
        self._stamps: dict[Path, tuple[float, int]] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def paths(self) -> list[Path]:
        return [sample_terms_path() if t == SAMPLE_TERMS else Path(t) for t in self.settings.terms]

    async def start(self) -> None:
        if not self.settings.enabled:
            return
        await self.reload()
        if self.settings.reload_seconds:
            self._task = asyncio.create_task(self._watch(), name="review-terms")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def policies(
        self, plan_policy: str | None, model_policies: tuple[str, ...] = ()
    ) -> StagePolicies:
        """What reviews a request: its plan's policy and its model's (for a layer, also the
        layers' it is built on), the strictest of them for every rule; nothing when review is
        off."""
        if not self.settings.enabled:
            return NOT_REVIEWED
        key = (plan_policy or "", model_policies)
        found = self._combined.get(key)
        if found is None:
            # Names are checked against the settings at start-up; a plan stored through the
            # API later may still name none, and then gets the default rather than nothing.
            found = self._compiled.get(plan_policy or "default", self._compiled["default"])
            for name in model_policies:
                found = strictest(found, self._compiled[name])
            self._combined[key] = found
        return found

    async def reload(self) -> bool:
        """Read the term lists again if any changed; True if the matcher was replaced. A list
        that cannot be read keeps the previous matcher and says why in the log."""
        stamps = {path: _stamp(path) for path in self.paths}
        if stamps == self._stamps:
            return False
        started = time.perf_counter()
        try:
            matcher = await asyncio.to_thread(_build, self.paths)
        except (OSError, ValueError) as exc:
            log.error("review: term lists not loaded", extra={"error": str(exc)})
            self._stamps = stamps  # not retried until the files change again
            return False
        self.matcher, self._stamps = matcher, stamps
        log.info(
            "review: term lists loaded",
            extra={"terms": matcher.size, "seconds": round(time.perf_counter() - started, 3)},
        )
        return True

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reload_seconds)
            try:
                await self.reload()
            except Exception:  # the watcher must outlive a bad file
                log.exception("review: reloading term lists failed")


def _build(paths: list[Path]) -> TermMatcher:
    terms: list[Term] = []
    for path in paths:
        terms += load_terms(path)
    return TermMatcher(terms)


def _stamp(path: Path) -> tuple[float, int]:
    try:
        stat = path.stat()
    except OSError:
        return (-1.0, -1)
    return (stat.st_mtime, stat.st_size)
