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


class _Format:
    object: str
    chunk_object: str

    def __init__(self, id: str, model: str, logprobs: bool) -> None:
        self.id = id
        self.model = model
        self.created = int(time.time())
        self.with_logprobs = logprobs

    def _envelope(self, object: str, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": object,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
            **extra,
        }

    def _chunk(self, choice: dict[str, Any]) -> dict[str, Any]:
        return self._envelope(self.chunk_object, [choice])

    def usage(self, usage: Usage) -> dict[str, Any]:
        return self._envelope(self.chunk_object, [], usage=usage.as_dict())

    def response(self, choices: list[Choice], usage: Usage) -> dict[str, Any]:
        body = [self._final_choice(c) for c in choices]
        return self._envelope(self.object, body, usage=usage.as_dict())

    def _final_choice(self, choice: Choice) -> dict[str, Any]:
        raise NotImplementedError


class ChatFormat(_Format):
    object = "chat.completion"
    chunk_object = "chat.completion.chunk"

    def start(self, index: int, prefix: str = "") -> dict[str, Any] | None:
        delta = {"role": "assistant", "content": prefix}
        return self._chunk(
            {"index": index, "delta": delta, "logprobs": None, "finish_reason": None}
        )

    def delta(self, index: int, text: str, logprobs: list[TokenLogprob]) -> dict[str, Any]:
        return self._chunk(
            {
                "index": index,
                "delta": {"content": text},
                "logprobs": self._logprobs(logprobs),
                "finish_reason": None,
            }
        )

    def finish(self, index: int, reason: FinishReason) -> dict[str, Any]:
        return self._chunk({"index": index, "delta": {}, "logprobs": None, "finish_reason": reason})

    def _final_choice(self, choice: Choice) -> dict[str, Any]:
        return {
            "index": choice.index,
            "message": {"role": "assistant", "content": choice.text, "refusal": None},
            "logprobs": self._logprobs(choice.logprobs),
            "finish_reason": choice.finish_reason,
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


class TextFormat(_Format):
    object = "text_completion"
    chunk_object = "text_completion"  # OpenAI uses the same object for chunks

    def start(self, index: int, prefix: str = "") -> dict[str, Any] | None:
        return self.delta(index, prefix, []) if prefix else None

    def delta(self, index: int, text: str, logprobs: list[TokenLogprob]) -> dict[str, Any]:
        logprob_body = self._logprobs(logprobs)
        return self._chunk(
            {"index": index, "text": text, "logprobs": logprob_body, "finish_reason": None}
        )

    def finish(self, index: int, reason: FinishReason) -> dict[str, Any]:
        return self._chunk({"index": index, "text": "", "logprobs": None, "finish_reason": reason})

    def _final_choice(self, choice: Choice) -> dict[str, Any]:
        return {
            "index": choice.index,
            "text": choice.text,
            "logprobs": self._logprobs(choice.logprobs),
            "finish_reason": choice.finish_reason,
        }

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
