"""An optional guard model (Llama Guard 3, Qwen3Guard, ...), a model of the catalogue.

The guard is sent the conversation as a chat completion; its model's own chat template turns
it into its classification prompt (of the prompt's last user turn, or of the answer when the
conversation ends with it). Its answer is parsed in the two shapes these
families use: Llama Guard's ``safe`` or ``unsafe`` followed by category codes (``S1,S10``), and
Qwen3Guard's ``Safety: Unsafe`` with ``Categories: Violent``. Each category maps to a TC260-003
risk, so the guard's findings go through the same policy as the term lists'.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from ..engines.base import Engine
from ..errors import APIError
from ..types import GenerationRequest, Sampling, Tenant
from .config import GuardSettings
from .terms import Hit

CATCH_ALL = "A.1.8"

# Llama Guard 3's hazard categories (MLCommons) and Qwen3Guard's, to TC260-003 risks. An
# operator's ``categories`` table is laid over these.
DEFAULT_CATEGORIES = {
    "S1": "A.4.1",  # violent crimes
    "S2": "A.1.8",  # non-violent crimes
    "S3": "A.1.6",  # sex-related crimes
    "S4": "A.1.6",  # child sexual exploitation
    "S5": "A.4.3",  # defamation
    "S6": "A.5.1",  # specialised advice
    "S7": "A.4.5",  # privacy
    "S8": "A.3.1",  # intellectual property
    "S9": "A.1.4",  # indiscriminate weapons
    "S10": "A.2.9",  # hate
    "S11": "A.4.1",  # suicide and self-harm
    "S12": "A.1.6",  # sexual content
    "S13": "A.1.7",  # elections
    "S14": "A.1.8",  # code interpreter abuse
    "violent": "A.1.6",
    "non-violent illegal acts": "A.1.8",
    "sexual content or sexual acts": "A.1.6",
    "pii": "A.4.6",
    "suicide & self-harm": "A.4.1",
    "unethical acts": "A.3.2",
    "politically sensitive topics": "A.1.2",
    "copyright violation": "A.3.1",
    "jailbreak": "A.1.8",
}

_QWEN_SAFETY = re.compile(r"safety:\s*(safe|unsafe|controversial)", re.IGNORECASE)
_QWEN_CATEGORIES = re.compile(r"categories:\s*(.+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Finding:
    unsafe: bool
    categories: tuple[str, ...]


def parse_answer(text: str) -> Finding:
    """A guard model's answer, in either family's shape; anything else counts as safe."""
    qwen = _QWEN_SAFETY.search(text)
    if qwen is not None:
        found = _QWEN_CATEGORIES.search(text)
        names = [] if found is None else [c.strip() for c in found.group(1).split(",")]
        return Finding(qwen.group(1).lower() == "unsafe", tuple(n for n in names if n))
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines or lines[0].lower() != "unsafe":
        return Finding(False, ())
    codes = lines[1].replace(" ", "").split(",") if len(lines) > 1 else []
    return Finding(True, tuple(c for c in codes if c))


def hits_of(finding: Finding, categories: dict[str, str]) -> list[Hit]:
    """An unsafe finding as term-like hits, one per category, for the policy to judge."""
    if not finding.unsafe:
        return []
    table = {k.lower(): v for k, v in (DEFAULT_CATEGORIES | categories).items()}
    names = finding.categories or ("unsafe",)
    return [Hit(f"guard:{name}", table.get(name.lower(), CATCH_ALL), 0, 0, "") for name in names]


class Guard:
    """The guard model of ``settings.model``, reached through the catalogue like any model: its
    deployments' balancing, retries, fallbacks and breakers apply, and it may be an upstream
    (vLLM serving Llama Guard) or the embedded engine."""

    def __init__(self, settings: GuardSettings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self._sampling = Sampling(32, 0.0, None, 0.0, 0.0)

    async def check(self, messages: list[dict[str, str]]) -> list[Hit] | None:
        """The guard's hits for the conversation's last turn (the prompt, or with the answer
        appended, the answer); None when it could not be asked (the caller decides, by
        ``fail_open``, whether that lets the request through)."""
        request = GenerationRequest(self._sampling, messages=messages)
        try:
            async with asyncio.timeout(self.settings.timeout):
                prepared = await self.engine.prepare(request)
                piece = await self.engine.complete(prepared, _PLATFORM)
        except (APIError, TimeoutError, OSError):
            return None
        return hits_of(parse_answer(piece.text), self.settings.categories)


# The guard's calls are the platform's own, metered to no caller, and ahead of every plan in
# an engine's queue: a request waits on its guard's answer.
_PLATFORM = Tenant(":guard", priority=1_000)
