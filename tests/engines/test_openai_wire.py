"""OpenAI's wire format: request bodies, whole answers and errors read back."""

from __future__ import annotations

import pytest

from modelgrid.engines.openai_wire import error_message, json_object, payload, whole_answer
from modelgrid.errors import UpstreamError
from modelgrid.types import GenerationRequest, Sampling

SAMPLING = Sampling(
    max_tokens=16, temperature=None, top_p=None, presence_penalty=0, frequency_penalty=0
)


def test_a_streamed_chat_asks_for_usage_and_leaves_unset_fields_out() -> None:
    request = GenerationRequest(SAMPLING, messages=[{"role": "user", "content": "Hi"}], stream=True)
    body = payload(request, "upstream-name")
    assert body == {
        "model": "upstream-name",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 16,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_a_whole_answer_takes_the_upstream_usage() -> None:
    answer = {
        "choices": [{"message": {"content": "Hello"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "prompt_cache_hit_tokens": 2},
    }
    piece = whole_answer(answer, chat=True)
    assert (piece.text, piece.tokens, piece.finish_reason) == ("Hello", 3, "length")
    assert piece.usage is not None and piece.usage.cached_tokens == 2


def test_answers_that_are_not_completions_are_upstream_errors() -> None:
    with pytest.raises(UpstreamError, match="not a completion"):
        whole_answer({"choices": []}, chat=True)
    with pytest.raises(UpstreamError, match="invalid JSON"):
        json_object(b"not json", "d/0")
    with pytest.raises(UpstreamError, match="not an object"):
        json_object(b"[1]", "d/0")


def test_error_messages_in_either_shape() -> None:
    assert error_message({"error": {"message": "bad"}}) == "bad"
    assert error_message({"error": "plain"}) == "plain"
    assert error_message([]) is None
