import pytest

from modelgrid.errors import InvalidRequest
from modelgrid.schemas import ChatCompletionRequest, CompletionRequest, parse

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def problem(schema: type, body: object) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse(schema, body)
    return caught.value


def test_valid_chat_body() -> None:
    body = parse(ChatCompletionRequest, {**CHAT, "stop": "x", "temperature": 0})
    assert body.stops() == ("x",)
    assert body.messages[0].text() == "hi"


def test_content_parts_are_joined() -> None:
    content = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    body = parse(
        ChatCompletionRequest, {**CHAT, "messages": [{"role": "user", "content": content}]}
    )
    assert body.messages[0].text() == "ab"


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"messages": CHAT["messages"]}, "model", "missing_required_parameter"),
        ({"model": "m"}, "messages", "missing_required_parameter"),
        ({**CHAT, "temperature": "hot"}, "temperature", "invalid_type"),
        ({**CHAT, "temperature": 3}, "temperature", "invalid_value"),
        ({**CHAT, "max_tokens": 0}, "max_tokens", "invalid_value"),
        ({**CHAT, "max_tokens": "10"}, "max_tokens", "invalid_type"),
        (
            {**CHAT, "messages": [{"role": "user", "content": 5}]},
            "messages[0].content",
            "invalid_type",
        ),
        (
            {**CHAT, "messages": [{"role": "robot", "content": "x"}]},
            "messages[0].role",
            "invalid_value",
        ),
        ({**CHAT, "messages": []}, "messages", "invalid_value"),
        ({**CHAT, "stop": ["a", "b", "c", "d", "e"]}, "stop", "invalid_value"),
        ({**CHAT, "stream": "yes"}, "stream", "invalid_type"),
    ],
)
def test_errors_name_the_parameter(body: dict[str, object], param: str, code: str) -> None:
    error = problem(ChatCompletionRequest, body)
    assert (error.param, error.code, error.status) == (param, code, 400)
    assert param in error.message


def test_body_must_be_an_object() -> None:
    assert "JSON object" in problem(ChatCompletionRequest, [1, 2]).message


def test_completion_prompt_forms() -> None:
    for prompt in ["a", ["a", "b"], [1, 2], [[1], [2]]]:
        assert parse(CompletionRequest, {"model": "m", "prompt": prompt}).prompt == prompt
    assert problem(CompletionRequest, {"model": "m", "prompt": []}).param == "prompt"


def test_unknown_fields_are_ignored() -> None:
    assert parse(ChatCompletionRequest, {**CHAT, "vendor_extra": 1}).model == "m"
