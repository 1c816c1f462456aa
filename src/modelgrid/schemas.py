"""OpenAI's request bodies, validated; errors name the offending field as OpenAI's ``param``.

Unknown fields are ignored rather than refused, as vLLM and llama.cpp's server do, so clients
that send provider-specific extras keep working.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import InvalidRequest


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class TextPart(Body):
    type: Literal["text"]
    text: str


class Message(Body):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(Body):
    include_usage: bool = False


class JSONSchemaSpec(Body):
    name: str = "response"
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class ResponseFormatBody(Body):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaSpec | None = None


Stop = str | Annotated[list[str], Field(max_length=4)] | None


class _Generation(Body):
    model: str
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    n: Annotated[int, Field(ge=1, le=128)] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: Stop = None
    seed: int | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] = 0.0
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] = 0.0
    logit_bias: dict[str, float] | None = None
    user: Annotated[str, Field(max_length=256)] | None = None

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class ChatCompletionRequest(_Generation):
    messages: Annotated[list[Message], Field(min_length=1)]
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    logprobs: bool = False
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    # OpenAI's up to 16 pairs of strings; ``reference``, if given, is the answer an ``auto``
    # model's shadow evaluation judges both models' answers by.
    metadata: (
        Annotated[dict[str, Annotated[str, Field(max_length=512)]], Field(max_length=16)] | None
    ) = None
    response_format: ResponseFormatBody | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None

    def asked(self) -> str:
        """What the user said last: what ``auto`` routes on and a layer's retrieval seeks."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text()
        return ""


class CompletionRequest(_Generation):
    prompt: str | list[str] | list[int] | list[list[int]]
    logprobs: Annotated[int, Field(ge=0, le=5)] | None = None
    echo: bool = False
    suffix: str | None = None
    best_of: Annotated[int, Field(ge=1)] | None = None

    @field_validator("prompt")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("the prompt list is empty")
        return value


class EmbeddingsBody(Body):
    model: str
    input: (
        str
        | Annotated[list[str], Field(min_length=1, max_length=2048)]
        | Annotated[list[int], Field(min_length=1)]
        | Annotated[list[list[int]], Field(min_length=1, max_length=2048)]
    )
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: Annotated[str, Field(max_length=256)] | None = None


def parse(model: type[BaseModel], body: Any) -> Any:
    """Validate a decoded JSON body, raising OpenAI-style 400s."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _first_problem(exc) from None


def _first_problem(exc: ValidationError) -> InvalidRequest:
    errors = exc.errors(include_url=False)
    # For a union (``stop``: a string or a list), a value error in the member whose type
    # matched says more than the type errors of the members that did not.
    err = next((e for e in errors if not e["type"].endswith("_type")), errors[0])
    param = _param(err["loc"])
    kind = err["type"]
    if kind == "missing":
        return InvalidRequest(
            f"Missing required parameter: '{param}'.",
            param=param,
            code="missing_required_parameter",
        )
    if kind.endswith("_type") or kind in {"model_type", "dict_type", "list_type"}:
        return InvalidRequest(
            f"Invalid type for '{param}': {err['msg']}.", param=param, code="invalid_type"
        )
    return InvalidRequest(
        f"Invalid value for '{param}': {err['msg']}.", param=param, code="invalid_value"
    )


def _param(loc: tuple[int | str, ...]) -> str:
    # pydantic adds the member it tried for unions ("str", "list[...]") and tagged literal
    # names; OpenAI's param is the field path only.
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif (
            "[" in part
            or part in {"str", "int", "float", "bool", "none", "literal"}
            or (part.startswith("function-") or part.startswith("constrained-"))
        ):
            continue
        else:
            out += f".{part}" if out else part
    return out or "body"
