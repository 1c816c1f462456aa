"""A streamed response: each choice's pieces as server-sent events, reviewed and labelled on
the way out, settled before the stream's end reaches the client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

from .call import Call, resumed, sse, usage_of
from .compliance import Compliance
from .errors import APIError, ServerError
from .review.verdict import Action
from .types import FinishReason, Piece

log = logging.getLogger("modelgrid.gateway")

Pieces = AsyncGenerator[Piece, None]


async def stream(
    call: Call,
    first: Piece,
    rest: Pieces,
    more: Callable[[int], Pieces],
    compliance: Compliance,
    ended: Callable[[Call], None],
) -> AsyncGenerator[bytes, None]:
    """``first`` and ``rest`` are choice 0's pieces; ``more(i)`` generates choice i's;
    ``ended`` runs once the stream is over, however it ended."""
    fmt, trace, label = call.fmt, call.trace, call.label
    tagged = call.aigc is None and not call.citations
    if call.screening.refused:
        label = None  # the refusal is ModelGrid's own text, not generated content

    def event(payload: dict[str, Any]) -> bytes:
        nonlocal tagged
        if not tagged:  # the implicit label and the citations ride on the first chunk
            tagged = True
            if call.aigc is not None:
                payload["AIGC"] = call.aigc
            if call.citations:
                payload["citations"] = call.citations
        return sse(payload)

    try:
        for index, (prefix, _) in enumerate(call.choices):
            served: list[str] = [prefix]
            if (opening := fmt.start(index, prefix)) is not None:
                yield event(opening)
            if label is not None and label.opening is not None:
                served.append(label.opening)
                yield event(fmt.delta(index, label.opening, []))
            review = None if call.screening.refused else compliance.answer_filter(call.screening)
            answer_from = len(served)  # what came before is ours, not the model's
            finish: FinishReason | None = None
            source = resumed(first, rest) if index == 0 else more(index)
            async with aclosing(source) as pieces:
                async for piece in pieces:
                    text = piece.text if review is None else review.feed(piece.text)
                    if piece.finish_reason is not None and review is not None:
                        text += review.finish()
                    if text or piece.logprobs:
                        served.append(text)
                        yield event(fmt.delta(index, text, piece.logprobs))
                    if review is not None and review.refused is not None:
                        finish = "content_filter"  # and the engine stops: the source closes
                        break
                    if piece.finish_reason is not None:
                        finish = piece.finish_reason
            if review is not None:
                call.screening.answers.append(review.verdict)
                if finish is not None and finish != "content_filter":
                    # The guard reads the whole answer: shown already, but its stream ends
                    # filtered, and the records say why.
                    answer = "".join(served[answer_from:])
                    guarded = await compliance.guard_answer(call.screening, call.prompt, answer)
                    if guarded is not None:
                        call.screening.answers.append(guarded)
                        if guarded.action is Action.REFUSE:
                            finish = "content_filter"
            if finish is not None:
                if finish == "content_filter":
                    trace.outcome = "content_filter"
                elif label is not None and label.closing is not None:
                    served.append(label.closing)
                    yield event(fmt.delta(index, label.closing, []))
                yield event(fmt.finish(index, finish))
            call.served.append("".join(served))
        # Settled before the stream's end reaches the client: a stream it saw end has its
        # ledger entry, whatever happens to this process next.
        await trace.settle()
        if call.include_usage:
            yield sse(fmt.usage(usage_of(trace)))
        yield b"data: [DONE]\n\n"
    except (GeneratorExit, asyncio.CancelledError):
        trace.outcome = "cancelled"
        raise
    except APIError as exc:
        trace.outcome = exc.code or exc.type
        yield sse(exc.body())
    except Exception:
        # Headers are sent: the client learns of the failure from an error event, the log
        # from the traceback.
        log.exception("generation failed mid-stream", extra={"request_id": trace.request_id})
        trace.outcome = "error"
        failure = ServerError(f"The server failed mid-stream (request {trace.request_id}).")
        yield sse(failure.body())
    finally:
        await rest.aclose()  # a no-op once consumed; frees the engine otherwise
        ended(call)
