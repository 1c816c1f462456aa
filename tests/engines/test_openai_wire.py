"""OpenAI's wire format: request bodies, whole answers, a stream's events and errors read
back."""

from __future__ import annotations

import orjson
import pytest

from modelgrid.engines.openai_wire import (
    error_message,
    json_object,
    payload,
    read_events,
    whole_answer,
)
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


def _sse(*events: object) -> list[bytes]:
    """A read's lines: each event, then the blank line that ends it."""
    lines = []
    for e in events:
        lines += [b"data: " + (e if isinstance(e, bytes) else orjson.dumps(e)), b""]
    return lines


def _delta(text: str, finish: str | None = None, logprob: float | None = None) -> dict[str, object]:
    choice: dict[str, object] = {"index": 0, "delta": {"content": text}, "finish_reason": finish}
    if logprob is not None:
        choice["logprobs"] = {"content": [{"token": text, "logprob": logprob, "top_logprobs": []}]}
    return {"choices": [choice]}


def test_the_events_of_one_read_go_on_as_one_piece() -> None:
    read = read_events(_sse(_delta("Hel"), _delta("lo"), _delta(" you")), True, "d")
    assert (read.text, read.count, read.finish, read.done) == ("Hello you", 3, None, False)


def test_a_read_ends_the_stream_with_its_finish_usage_and_done() -> None:
    usage = {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}}
    lines = _sse(_delta("."), _delta("", "length"), usage, b"[DONE]", _delta("after"))
    read = read_events(lines, True, "d")
    assert (read.text, read.count, read.finish, read.done) == (".", 1, "length", True)
    assert read.usage is not None and read.usage.completion_tokens == 2


def test_log_probabilities_of_a_read_are_kept_in_order() -> None:
    read = read_events(_sse(_delta("a", logprob=-0.5), _delta("b", logprob=-1.5)), True, "d")
    assert [(t.token, t.logprob) for t in read.logprobs] == [("a", -0.5), ("b", -1.5)]


def test_text_completion_events_and_comments() -> None:
    lines = [b": keep-alive", b"", *_sse({"choices": [{"text": "Hi", "finish_reason": "stop"}]})]
    read = read_events(lines, False, "d")
    assert (read.text, read.count, read.finish) == ("Hi", 1, "stop")


@pytest.mark.parametrize(
    ("bad", "words"),
    [(b"{not json", "invalid JSON"), (orjson.dumps({"error": {"message": "boom"}}), "boom")],
)
def test_an_error_in_a_read_comes_after_the_content_before_it(bad: bytes, words: str) -> None:
    read = read_events(_sse(_delta("kept"), bad, _delta("lost")), True, "d")
    assert (read.text, read.count) == ("kept", 1)
    assert read.error is not None and words in str(read.error) and "'d'" in str(read.error)
