"""OpenAI's wire format, as the upstream engine speaks it (pure functions): a generation
request as the JSON body an OpenAI-compatible server takes, and its answers (whole, a stream's
events, errors) read back into pieces, usage and log-probabilities."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ..errors import UpstreamError
from ..types import FinishReason, GenerationRequest, Piece, TokenLogprob, TopLogprob, Usage

FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length"}


def request_body(request: GenerationRequest, model: str) -> bytes:
    return orjson.dumps(payload(request, model))


def payload(request: GenerationRequest, model: str) -> dict[str, Any]:
    s = request.sampling
    body: dict[str, Any] = {"model": request.adapter or model}
    if request.messages is not None:
        body["messages"] = request.messages
    else:
        body["prompt"] = request.prompt
    optional = {
        "max_tokens": s.max_tokens,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "seed": s.seed,
        "stop": list(s.stop) or None,
        "presence_penalty": s.presence_penalty or None,
        "frequency_penalty": s.frequency_penalty or None,
    }
    body.update((k, v) for k, v in optional.items() if v is not None)
    if s.grammar is not None:
        if s.grammar.kind == "json_schema":
            schema = {"name": "response", "schema": s.grammar.schema}
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        else:
            body["response_format"] = {"type": "json_object"}
    if s.logprobs is not None:
        if request.messages is not None:
            body["logprobs"] = True
            body["top_logprobs"] = s.logprobs
        else:
            body["logprobs"] = s.logprobs
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def whole_answer(body: dict[str, Any], chat: bool) -> Piece:
    try:
        choice = body["choices"][0]
        text = (choice.get("message") or {}).get("content") if chat else choice.get("text")
        usage = read_usage(body["usage"]) if body.get("usage") else None
    except (KeyError, IndexError, TypeError):
        raise UpstreamError("The upstream's answer is not a completion.") from None
    finish = FINISH.get(choice.get("finish_reason") or "stop", "stop")
    text = text or ""
    tokens = usage.completion_tokens if usage else max(1, len(text) // 4) if text else 0
    return Piece(text, tokens, logprobs_of(choice.get("logprobs"), chat), finish, usage)


@dataclass(slots=True)
class Events:
    """What one read of a streamed answer brought: its content, as one piece's worth, and
    how the stream ends if it ended there."""

    text: str = ""
    count: int = 0  # content events, each a token's worth until the upstream's usage says
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish: FinishReason | None = None
    usage: Usage | None = None
    done: bool = False  # the [DONE] line: nothing after it is read
    error: UpstreamError | None = None  # to raise once the content before it is passed on


def read_events(lines: list[bytes], chat: bool, name: str) -> Events:
    """A read's SSE lines of a chat (``chat``) or text completion stream from deployment
    ``name``: what arrived together goes on together, one piece rather than one an event,
    which the layers above would each handle in turn."""
    read = Events()
    texts: list[str] = []
    try:
        for line in lines:
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                read.done = True
                break
            event = json_object(data, name)
            if "error" in event:
                message = error_message(event) or "an error event"
                raise UpstreamError(f"Deployment '{name}' sent {message}.")
            if event.get("usage"):
                read.usage = read_usage(event["usage"])
            for choice in event.get("choices") or []:
                text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
                raw = choice.get("logprobs")
                logprobs = logprobs_of(raw, chat) if raw else []
                if text or logprobs:
                    texts.append(text or "")
                    read.count += 1
                    read.logprobs += logprobs
                if choice.get("finish_reason"):
                    read.finish = FINISH.get(choice["finish_reason"], "stop")
    except UpstreamError as exc:
        read.error = exc
    read.text = "".join(texts)
    return read


def read_usage(raw: dict[str, Any]) -> Usage:
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        int(raw.get("prompt_tokens") or 0),
        int(raw.get("completion_tokens") or 0),
        int(cached or raw.get("prompt_cache_hit_tokens") or 0),  # DeepSeek's name for it
    )


def logprobs_of(raw: Any, chat: bool) -> list[TokenLogprob]:
    if not raw:
        return []
    if chat:
        return [
            TokenLogprob(
                token=t["token"],
                logprob=t["logprob"],
                bytes=t.get("bytes") or list(t["token"].encode()),
                top=[
                    TopLogprob(
                        a["token"], a["logprob"], a.get("bytes") or list(a["token"].encode())
                    )
                    for a in t.get("top_logprobs") or []
                ],
            )
            for t in raw.get("content") or []
        ]
    tops = raw.get("top_logprobs") or [None] * len(raw.get("tokens") or [])
    return [
        TokenLogprob(
            token=token,
            logprob=logprob,
            bytes=list(token.encode()),
            top=[TopLogprob(k, v, list(k.encode())) for k, v in (top or {}).items()],
        )
        for token, logprob, top in zip(
            raw.get("tokens") or [], raw.get("token_logprobs") or [], tops, strict=False
        )
    ]


def json_object(data: bytes, name: str) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"Deployment '{name}' sent invalid JSON.") from None
    if not isinstance(value, dict):
        raise UpstreamError(f"Deployment '{name}' sent JSON that is not an object.")
    return value


def error_message(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    return None
