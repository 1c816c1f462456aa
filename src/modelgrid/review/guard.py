"""An optional guard model behind an OpenAI-compatible server (Llama Guard 3, Qwen3Guard, ...).

The guard is sent the prompt's messages as a chat completion; its model's own chat template
turns them into its classification prompt. Its answer is parsed in the two shapes these
families use: Llama Guard's ``safe`` or ``unsafe`` followed by category codes (``S1,S10``), and
Qwen3Guard's ``Safety: Unsafe`` with ``Categories: Violent``. Each category maps to a TC260-003
risk, so the guard's findings go through the same policy as the term lists'.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import aiohttp
import orjson

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
    def __init__(self, settings: GuardSettings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._headers = {"Content-Type": "application/json"}

    async def start(self) -> None:
        if self.settings.api_key_env:
            key = os.environ.get(self.settings.api_key_env, "")
            self._headers["Authorization"] = f"Bearer {key}"
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout), headers=self._headers
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def check(self, messages: list[dict[str, str]]) -> list[Hit] | None:
        """The guard's hits for a prompt; None when it could not be asked (the caller decides,
        by ``fail_open``, whether that lets the request through)."""
        assert self._session is not None, "guard not started"
        body = {"model": self.settings.model, "messages": messages, "max_tokens": 32}
        url = self.settings.base_url.rstrip("/") + "/chat/completions"
        try:
            async with self._session.post(url, data=orjson.dumps(body)) as response:
                if response.status >= 400:
                    return None
                answer = orjson.loads(await response.read())
            text = answer["choices"][0]["message"]["content"] or ""
        except (aiohttp.ClientError, TimeoutError, OSError, orjson.JSONDecodeError):
            return None
        except (KeyError, IndexError, TypeError):
            return None
        return hits_of(parse_answer(text), self.settings.categories)
