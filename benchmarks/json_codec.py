"""The JSON library on the request path: orjson against the standard library, side by side.

Every request is parsed once (the client's body) and every response serialised once, plus a
stream chunk per token when streaming; these are the three shapes timed here.
``python benchmarks/json_codec.py [--json]`` prints microseconds per call and the ratio.
"""

from __future__ import annotations

import argparse
import json
import timeit
from collections.abc import Callable
from typing import Any

import orjson

REQUEST = json.dumps(
    {
        "model": "smollm2-135m-instruct",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant. " * 8},
            {"role": "user", "content": "Summarise the plot of a long novel in three lines. " * 6},
        ],
        "max_tokens": 256,
        "temperature": 0.7,
        "stream": False,
    }
).encode()
RESPONSE: dict[str, Any] = {
    "id": "chatcmpl-0123456789abcdef0123456789abcdef",
    "object": "chat.completion",
    "created": 1_790_000_000,
    "model": "smollm2-135m-instruct",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "A fine answer. " * 40},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 120, "completion_tokens": 160, "total_tokens": 280},
}
CHUNK: dict[str, Any] = {
    "id": RESPONSE["id"],
    "object": "chat.completion.chunk",
    "created": 1_790_000_000,
    "model": "smollm2-135m-instruct",
    "choices": [{"index": 0, "delta": {"content": " word"}, "finish_reason": None}],
}


def per_call_us(fn: Callable[[], object], repeat: int = 5, number: int = 20_000) -> float:
    return min(timeit.repeat(fn, repeat=repeat, number=number)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    cases = {
        "parse request": (lambda: json.loads(REQUEST), lambda: orjson.loads(REQUEST)),
        "dump response": (lambda: json.dumps(RESPONSE).encode(), lambda: orjson.dumps(RESPONSE)),
        "dump stream chunk": (lambda: json.dumps(CHUNK).encode(), lambda: orjson.dumps(CHUNK)),
    }
    results = {}
    for name, (stdlib, fast) in cases.items():
        a, b = per_call_us(stdlib), per_call_us(fast)
        results[name] = {
            "json_us": round(a, 3),
            "orjson_us": round(b, 3),
            "speedup": round(a / b, 1),
        }
    if args.json:
        print(json.dumps(results))
        return
    print(f"{'':20}{'json µs':>10}{'orjson µs':>11}{'speed-up':>10}")
    for name, r in results.items():
        print(f"{name:20}{r['json_us']:>10.2f}{r['orjson_us']:>11.2f}{r['speedup']:>9.1f}x")


if __name__ == "__main__":
    main()
