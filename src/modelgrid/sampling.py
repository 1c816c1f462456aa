"""From an API request body to engine-neutral generation requests (pure functions).

Fields the caller leaves out stay unset (None): each engine applies its own defaults, the
embedded one from its config (a temperature of 1.0 with no top-k suits a frontier model, not a
135M one), an upstream its own. Fields ModelGrid cannot honour are refused with a 400 that names
them, never silently ignored.
"""

from __future__ import annotations

from dataclasses import replace

from .engines.base import Engine
from .errors import InvalidRequest
from .schemas import ChatCompletionRequest, CompletionRequest
from .settings import ModelSettings
from .types import GenerationRequest, ResponseFormat, Sampling

# The legacy completions endpoint's default, as OpenAI and vLLM have it.
COMPLETIONS_DEFAULT_MAX_TOKENS = 16


def chat_requests(body: ChatCompletionRequest, defaults: ModelSettings) -> list[GenerationRequest]:
    """One generation request per choice (``n``)."""
    _check_common(body, defaults)
    if body.tools:
        raise InvalidRequest("Tool calling is not supported by this model.", param="tools")
    if body.top_logprobs is not None and not body.logprobs:
        raise InvalidRequest("'top_logprobs' requires 'logprobs' to be true.", param="top_logprobs")
    fmt = None
    if body.response_format is not None and body.response_format.type != "text":
        schema = body.response_format.json_schema
        if body.response_format.type == "json_schema" and (
            schema is None or schema.schema_ is None
        ):
            raise InvalidRequest(
                "'response_format' of type 'json_schema' needs 'json_schema.schema'.",
                param="response_format",
            )
        fmt = ResponseFormat(
            body.response_format.type, schema.schema_ if schema is not None else None
        )
    messages = [
        {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
        for m in body.messages
    ]
    sampling = _sampling(
        body,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        logprobs=(body.top_logprobs or 0) if body.logprobs else None,
        grammar=fmt,
    )
    request = GenerationRequest(sampling=sampling, messages=messages, stream=body.stream)
    return _per_choice(request, body.n)


def text_requests(
    body: CompletionRequest, defaults: ModelSettings
) -> list[tuple[str, GenerationRequest]]:
    """(echo prefix, request) per choice: ``n`` for each prompt, in OpenAI's order."""
    _check_common(body, defaults)
    if body.suffix:
        raise InvalidRequest("'suffix' is not supported by this model.", param="suffix")
    if body.best_of is not None and body.best_of != body.n:
        raise InvalidRequest("'best_of' other than 'n' is not supported.", param="best_of")
    prompts: list[str | list[int]]
    raw = body.prompt
    if isinstance(raw, str):
        prompts = [raw]
    elif all(isinstance(p, int) for p in raw):
        prompts = [list(raw)]  # type: ignore[arg-type]
    else:
        prompts = list(raw)  # type: ignore[arg-type]
    if body.echo and not all(isinstance(p, str) for p in prompts):
        raise InvalidRequest("'echo' needs a text prompt, not token ids.", param="echo")
    sampling = _sampling(
        body,
        max_tokens=body.max_tokens or COMPLETIONS_DEFAULT_MAX_TOKENS,
        logprobs=body.logprobs,
        grammar=None,
    )
    out: list[tuple[str, GenerationRequest]] = []
    for prompt in prompts:
        prefix = prompt if body.echo and isinstance(prompt, str) else ""
        base = GenerationRequest(sampling=sampling, prompt=prompt, stream=body.stream)
        out.extend((prefix, request) for request in _per_choice(base, body.n))
    return out


def _check_common(body: ChatCompletionRequest | CompletionRequest, defaults: ModelSettings) -> None:
    if body.n > defaults.max_n:
        raise InvalidRequest(
            f"'n' must be at most {defaults.max_n} for this model.", param="n", code="invalid_value"
        )
    if body.logit_bias:
        raise InvalidRequest("'logit_bias' is not supported by this model.", param="logit_bias")


def _sampling(
    body: ChatCompletionRequest | CompletionRequest,
    *,
    max_tokens: int | None,
    logprobs: int | None,
    grammar: ResponseFormat | None,
) -> Sampling:
    return Sampling(
        max_tokens=max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        stop=body.stops(),
        seed=body.seed,
        logprobs=logprobs,
        grammar=grammar,
    )


def _per_choice(request: GenerationRequest, n: int) -> list[GenerationRequest]:
    """``n`` requests; with a seed, choice i uses seed + i so choices differ yet reproduce."""
    seed = request.sampling.seed
    if n == 1 or seed is None:
        return [request] * n
    return [replace(request, sampling=replace(request.sampling, seed=seed + i)) for i in range(n)]


def embedding_tokens(engine: Engine, inputs: str | list[str] | list[int] | list[list[int]]) -> int:
    """Tokens an embedding request may take, for its reservation: counted by the model for
    text, and exact for token ids."""
    if isinstance(inputs, str):
        return engine.count_tokens(inputs)
    return sum(
        engine.count_tokens(x) if isinstance(x, str) else len(x) if isinstance(x, list) else 1
        for x in inputs
    )
