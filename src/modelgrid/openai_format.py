"""OpenAI's response bodies and stream chunks, built from engine-neutral results.

Two shapes share one flow: ``ChatFormat`` (``chat.completion``) and ``TextFormat``
(``text_completion``). The gateway never builds a dict itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .types import FinishReason, TokenLogprob, Usage


@dataclass(slots=True)
class Choice:
    """One choice, accumulated from pieces."""

    index: int
    text: str = ""
    finish_reason: FinishReason | None = None
    logprobs: list[TokenLogprob] = field(default_factory=list)


class ChatFormat:
    object = "chat.completion"

    def __init__(self, id: str, model: str, logprobs: bool) -> None:
        self.id = id
        self.model = model
        self.created = int(time.time())
        self.with_logprobs = logprobs

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
            **extra,
        }

    def start(self, index: int, prefix: str = "") -> dict[str, Any] | None:
        delta = {"role": "assistant", "content": prefix}
        return self._chunk(
            [{"index": index, "delta": delta, "logprobs": None, "finish_reason": None}]
        )

    def delta(self, index: int, text: str, logprobs: list[TokenLogprob]) -> dict[str, Any]:
        return self._chunk(
            [
                {
                    "index": index,
                    "delta": {"content": text},
                    "logprobs": self._logprobs(logprobs),
                    "finish_reason": None,
                }
            ]
        )

    def finish(self, index: int, reason: FinishReason) -> dict[str, Any]:
        return self._chunk(
            [{"index": index, "delta": {}, "logprobs": None, "finish_reason": reason}]
        )

    def usage(self, usage: Usage) -> dict[str, Any]:
        return self._chunk([], usage=usage.as_dict())

    def response(self, choices: list[Choice], usage: Usage) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": c.index,
                    "message": {"role": "assistant", "content": c.text, "refusal": None},
                    "logprobs": self._logprobs(c.logprobs),
                    "finish_reason": c.finish_reason,
                }
                for c in choices
            ],
            "usage": usage.as_dict(),
        }

    def _logprobs(self, items: list[TokenLogprob]) -> dict[str, Any] | None:
        if not self.with_logprobs:
            return None
        return {
            "content": [
                {
                    "token": lp.token,
                    "logprob": lp.logprob,
                    "bytes": lp.bytes,
                    "top_logprobs": [
                        {"token": t.token, "logprob": t.logprob, "bytes": t.bytes} for t in lp.top
                    ],
                }
                for lp in items
            ],
            "refusal": None,
        }


class TextFormat:
    object = "text_completion"

    def __init__(self, id: str, model: str, logprobs: bool) -> None:
        self.id = id
        self.model = model
        self.created = int(time.time())
        self.with_logprobs = logprobs

    def _body(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
            **extra,
        }

    def start(self, index: int, prefix: str = "") -> dict[str, Any] | None:
        if not prefix:
            return None
        return self.delta(index, prefix, [])

    def delta(self, index: int, text: str, logprobs: list[TokenLogprob]) -> dict[str, Any]:
        return self._body(
            [
                {
                    "index": index,
                    "text": text,
                    "logprobs": self._logprobs(logprobs),
                    "finish_reason": None,
                }
            ]
        )

    def finish(self, index: int, reason: FinishReason) -> dict[str, Any]:
        return self._body([{"index": index, "text": "", "logprobs": None, "finish_reason": reason}])

    def usage(self, usage: Usage) -> dict[str, Any]:
        return self._body([], usage=usage.as_dict())

    def response(self, choices: list[Choice], usage: Usage) -> dict[str, Any]:
        return self._body(
            [
                {
                    "index": c.index,
                    "text": c.text,
                    "logprobs": self._logprobs(c.logprobs),
                    "finish_reason": c.finish_reason,
                }
                for c in choices
            ],
            usage=usage.as_dict(),
        )

    def _logprobs(self, items: list[TokenLogprob]) -> dict[str, Any] | None:
        if not self.with_logprobs:
            return None
        offsets, position = [], 0
        for lp in items:
            offsets.append(position)
            position += len(lp.token)
        return {
            "tokens": [lp.token for lp in items],
            "token_logprobs": [lp.logprob for lp in items],
            "top_logprobs": [{t.token: t.logprob for t in lp.top} for lp in items],
            "text_offset": offsets,
        }


ResponseFormatter = ChatFormat | TextFormat
