"""Any OpenAI-compatible server as an engine: vLLM, SGLang, llama.cpp's server, Ollama, a
provider's API, or another ModelGrid.

One pooled keep-alive client per deployment: pyreqwest, Rust's reqwest and hyper behind an
asyncio interface. The HTTP work runs on the client's own thread, outside the GIL, so a proxied
request costs the event loop about a quarter of what aiohttp's pure-Python client did (the
measurements that chose it are in docs/benchmarks.md). Streams are forwarded piece by piece as
they arrive. The upstream's key comes from an environment variable and only ever travels in the
Authorization header: no message, log line or error carries it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import orjson
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import (
    ConnectError,
    PyreqwestError,
    ReadError,
)
from pyreqwest.http import Url
from pyreqwest.response import Response

from ..errors import InvalidRequest, UpstreamError
from ..settings import OpenAISettings
from ..types import (
    EmbeddingRequest,
    EmbeddingResult,
    FinishReason,
    GenerationRequest,
    Piece,
    Prepared,
    Tenant,
    Usage,
)
from .base import Engine, EngineStats
from .body_lines import body_lines
from .openai_wire import error_message, json_object, read_events, request_body, whole_answer


class OpenAIEngine(Engine):
    def __init__(self, name: str, model_id: str, settings: OpenAISettings) -> None:
        self.name = name
        self.created = int(time.time())
        self.context_length = settings.context_length
        self._settings = settings
        self._model = settings.model or model_id
        self._base = settings.base_url.rstrip("/")
        # Parsed once: a URL given as text is parsed again by every request.
        self._chat = Url(f"{self._base}/chat/completions")
        self._completions = Url(f"{self._base}/completions")
        self._embeddings = Url(f"{self._base}/embeddings")
        self._client: Client | None = None
        self._inflight = 0

    async def start(self) -> None:
        s = self._settings
        headers = {"Content-Type": "application/json"}
        if s.api_key_env:
            key = os.environ.get(s.api_key_env)
            if not key:
                raise RuntimeError(
                    f"deployment {self.name}: the environment variable {s.api_key_env} is not set"
                )
            headers["Authorization"] = f"Bearer {key}"
        self._client = (
            ClientBuilder()
            .default_headers(headers)
            .connect_timeout(timedelta(seconds=s.connect_timeout))
            # Every request's bound, set once here rather than built into each request.
            .timeout(timedelta(seconds=s.total_timeout))
            .max_connections(s.max_connections)
            .pool_idle_timeout(timedelta(seconds=30))
            # An API that redirects a POST is misconfigured: say so (_error) rather than follow.
            .follow_redirects(False)
            # Compressed streams would reach us in the compressor's blocks, not as generated.
            .gzip(False)
            .brotli(False)
            .zstd(False)
            .deflate(False)
            .build()
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    def stats(self) -> EngineStats:
        return EngineStats(waiting=0, busy=self._inflight, slots=self._settings.max_connections)

    def count_tokens(self, text: str) -> int:
        # An estimate (about four characters a token) until the upstream reports exact usage.
        return max(1, len(text) // 4)

    async def prepare(self, request: GenerationRequest) -> Prepared:
        if request.messages is not None:
            text = "".join(m.get("content", "") for m in request.messages)
            estimate = self.count_tokens(text) + 4 * len(request.messages)
        elif isinstance(request.prompt, str):
            estimate = self.count_tokens(request.prompt)
        else:
            estimate = len(request.prompt or [])
        max_tokens = request.sampling.max_tokens or max(0, self.context_length - estimate)
        return Prepared(request, prompt_tokens=estimate, max_tokens=max_tokens)

    async def generate(self, prepared: Prepared, tenant: Tenant) -> AsyncGenerator[Piece, None]:
        if not prepared.request.stream:
            yield await self.complete(prepared, tenant)
            return
        request = prepared.request
        chat = request.messages is not None
        s = self._settings
        deadline = time.monotonic() + s.total_timeout
        self._inflight += 1
        try:
            async with AsyncExitStack() as stack:
                streamed = (
                    self._started()
                    .post(self._chat if chat else self._completions)
                    .body_bytes(request_body(request, self._model))
                    # Nothing read ahead: by default the client holds the response back until
                    # it has buffered 64 KB or the body's end, which for a stream is its end.
                    .streamed_read_buffer_limit(0)
                    .build_streamed()
                )
                # A stream must start within the first-token timeout.
                start_by = min(deadline, time.monotonic() + s.first_token_timeout)
                async with asyncio.timeout_at(_loop_deadline(start_by)):
                    response = await stack.enter_async_context(streamed)
                if response.status >= 300:
                    raise await self._error(response.status, await _read_all(response))
                async for piece in self._stream(response, chat, deadline):
                    yield piece
        except (PyreqwestError, TimeoutError, OSError) as exc:
            raise UpstreamError(f"Deployment '{self.name}' failed: {_describe(exc)}.") from None
        finally:
            self._inflight -= 1

    async def complete(self, prepared: Prepared, tenant: Tenant) -> Piece:
        """A non-streamed call: one request, one answer, bounded by the total timeout (the
        client's own: cheaper than an asyncio timer, and it aborts the request with it)."""
        if prepared.request.stream:
            return await super().complete(prepared, tenant)
        request = prepared.request
        chat = request.messages is not None
        self._inflight += 1
        try:
            response = (
                await self._started()
                .post(self._chat if chat else self._completions)
                .body_bytes(request_body(request, self._model))
                .build()
                .send()
            )
            raw = (await response.bytes()).to_bytes()
        except (PyreqwestError, TimeoutError, OSError) as exc:
            raise UpstreamError(f"Deployment '{self.name}' failed: {_describe(exc)}.") from None
        finally:
            self._inflight -= 1
        if response.status >= 300:
            raise await self._error(response.status, raw)
        if (response.get_header("content-type") or "").startswith("text/event-stream"):
            # an upstream that streams whatever it is asked
            raise UpstreamError(f"Deployment '{self.name}' streamed an answer it was asked whole.")
        return whole_answer(json_object(raw, self.name), chat)

    def _started(self) -> Client:
        assert self._client is not None, "engine not started"
        return self._client

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        body: dict[str, Any] = {"model": self._model, "input": request.input}
        if request.encoding_format != "float":
            body["encoding_format"] = request.encoding_format
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        self._inflight += 1
        try:
            response = (
                await self._started()
                .post(self._embeddings)
                .body_bytes(orjson.dumps(body))
                .build()
                .send()
            )
            raw = (await response.bytes()).to_bytes()
        except (PyreqwestError, TimeoutError, OSError) as exc:
            raise UpstreamError(f"Deployment '{self.name}' failed: {_describe(exc)}.") from None
        finally:
            self._inflight -= 1
        if response.status >= 300:
            raise await self._error(response.status, raw)
        answer = json_object(raw, self.name)
        data = answer.get("data")
        if not isinstance(data, list):
            raise UpstreamError(f"Deployment '{self.name}' sent no embeddings.")
        usage = answer.get("usage") or {}
        return EmbeddingResult(data, int(usage.get("prompt_tokens") or 0))

    async def _stream(
        self, response: Response, chat: bool, deadline: float
    ) -> AsyncGenerator[Piece, None]:
        s = self._settings
        finish: FinishReason | None = None
        usage: Usage | None = None
        async for lines in body_lines(response.body_reader, s.first_token_timeout, deadline):
            read = read_events(lines, chat, self.name)
            if read.count:
                yield Piece(read.text, read.count, read.logprobs)
            if read.error is not None:
                raise read.error
            usage = read.usage or usage
            finish = read.finish or finish
            if read.done:
                break
        if finish is None:
            # no finish_reason and no [DONE]: the stream was cut, not finished
            raise UpstreamError(f"Deployment '{self.name}' ended the stream early.")
        # Without the upstream's usage, the pieces counted stand (one per content chunk).
        yield Piece("", 0, finish_reason=finish, usage=usage)

    async def _error(self, status: int, raw: bytes) -> Exception:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = {}
        message = error_message(body)
        if status < 400:
            return UpstreamError(
                f"Deployment '{self.name}' redirected the request (HTTP {status}); "
                "set its base_url to the address it redirects to."
            )
        if status in (400, 422):
            param = (
                body.get("error", {}).get("param") if isinstance(body.get("error"), dict) else None
            )
            return InvalidRequest(message or "The upstream refused the request.", param=param)
        if status in (401, 403):
            return UpstreamError(
                f"Deployment '{self.name}' refused ModelGrid's credentials (HTTP {status})."
            )
        return UpstreamError(f"Deployment '{self.name}' answered HTTP {status}.")


async def _read_all(response: Response) -> bytes:
    """A streamed response's whole body (an error's: small)."""
    body: bytes = (await response.body_reader.bytes()).to_bytes()
    return body


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):  # pyreqwest's timeouts are TimeoutErrors too
        return "timed out"
    if isinstance(exc, ConnectError):
        return "connection refused or unreachable"
    if isinstance(exc, ReadError):
        return "the connection closed mid-response"
    return type(exc).__name__


def _loop_deadline(monotonic_deadline: float) -> float:
    """asyncio's clock is not guaranteed to be time.monotonic; convert a deadline to it."""
    loop = asyncio.get_running_loop()
    return loop.time() + (monotonic_deadline - time.monotonic())
