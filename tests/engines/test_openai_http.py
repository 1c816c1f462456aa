"""The upstream engine's own parts: errors named plainly.

Its streamed body's lines are tested in tests/engines/test_body_lines.py; requests through it
against real servers (llama.cpp's, another ModelGrid, the fault server) in
tests/test_upstreams.py and tests/test_real_upstreams.py."""

from __future__ import annotations

from modelgrid.engines.openai_http import _describe


def test_errors_are_named_without_internals() -> None:
    assert _describe(TimeoutError()) == "timed out"
    assert _describe(ValueError()) == "ValueError"
