"""Throughput of the embedded model: llama-cpp-python in-process versus through ModelGrid's API.

Both sides run the same GGUF file (``default_model_path()``), n_ctx 2048, the same prompts,
``temperature=0`` and one seed, so both should produce the same completions. The two phases run
one after the other, never together: the machine has two cores, and the in-process model is
closed before the server starts.

Per request we time, with ``perf_counter``, the first chunk whose content is non-empty (TTFT)
and the end of the stream (total). Decode speed is ``completion_tokens / (total - ttft)``; it
counts the first token in a span that excludes it, so it reads slightly high, equally on both
sides. Completion tokens are exact on both sides:

* API: the ``usage`` chunk the server sends when asked (``stream_options.include_usage``).
* In-process: a llama-cpp-python stream carries no usage, and counting chunks is not exact (a
  multi-byte character or a held-back stop-string prefix merges tokens). So each prompt first
  runs once untimed with ``stream=False``, whose usage is exact; at temperature 0 the streamed
  runs give the same completion, which is checked by comparing their text.

The server evaluates every seeded prompt afresh (see ``engines/llama_cpp.py``), while
``Llama`` would reuse the cached prompt prefix on repeats; we call ``reset()`` before each
in-process request so that both sides do the same prompt work.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import llama_cpp
import openai
from llama_cpp.llama_types import (
    ChatCompletionRequestMessage,
    CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse,
)

from modelgrid.engines.llama_cpp import default_model_path
from modelgrid.settings import DEFAULT_MODEL_ID

PROMPTS = [
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how a rainbow forms, in simple terms.",
    "List ten fruits and one fact about each.",
    "Give step-by-step instructions for making a cup of tea.",
    "Describe the water cycle to a ten-year-old.",
]


@dataclass(frozen=True, slots=True)
class Sample:
    prompt: int
    ttft: float
    total: float
    tokens: int
    text: str


Run = Callable[[int, int], Sample]  # (prompt index, max_tokens)


def timed(prompt: int, pieces: Iterator[str | None], tokens: Callable[[], int]) -> Sample:
    """Drain ``pieces``: a generator, so its request only starts once the clock runs."""
    start = time.perf_counter()
    ttft: float | None = None
    parts: list[str] = []
    for piece in pieces:
        if piece:
            ttft = ttft if ttft is not None else time.perf_counter() - start
            parts.append(piece)
    total = time.perf_counter() - start
    return Sample(prompt, total if ttft is None else ttft, total, tokens(), "".join(parts))


def local_chat(
    llm: llama_cpp.Llama, prompt: str, max_tokens: int, seed: int, stream: bool
) -> CreateChatCompletionResponse | Iterator[CreateChatCompletionStreamResponse]:
    messages: list[ChatCompletionRequestMessage] = [{"role": "user", "content": prompt}]
    llm.reset()  # type: ignore[no-untyped-call]
    return llm.create_chat_completion(
        messages, max_tokens=max_tokens, temperature=0, seed=seed, stream=stream
    )


def local_runner(llm: llama_cpp.Llama, seed: int, counts: list[int]) -> Run:
    def pieces(prompt: int, max_tokens: int) -> Iterator[str | None]:
        chunks = local_chat(llm, PROMPTS[prompt], max_tokens, seed, stream=True)
        assert isinstance(chunks, Iterator)
        for chunk in chunks:
            content = chunk["choices"][0]["delta"].get("content") if chunk["choices"] else None
            yield content if isinstance(content, str) else None

    return lambda prompt, max_tokens: timed(
        prompt, pieces(prompt, max_tokens), lambda: counts[prompt]
    )


def api_runner(client: openai.OpenAI, seed: int) -> Run:
    usage: list[int] = []

    def pieces(prompt: int, max_tokens: int) -> Iterator[str | None]:
        stream = client.chat.completions.create(
            model=DEFAULT_MODEL_ID,
            messages=[{"role": "user", "content": PROMPTS[prompt]}],
            max_tokens=max_tokens,
            temperature=0,
            seed=seed,
            stream=True,
            stream_options={"include_usage": True},
        )
        for chunk in stream:
            if chunk.usage is not None:
                usage.append(chunk.usage.completion_tokens)
            yield chunk.choices[0].delta.content if chunk.choices else None

    def run(prompt: int, max_tokens: int) -> Sample:
        usage.clear()
        return timed(prompt, pieces(prompt, max_tokens), lambda: usage[-1] if usage else 0)

    return run


def measure(run: Run, args: argparse.Namespace) -> list[Sample]:
    run(0, min(16, args.max_tokens))  # warm-up: page the weights in, start the threads
    samples = []
    # Round-robin over prompts, so slow drift in background load spreads over all of them.
    for _ in range(args.repeats):
        for prompt in range(len(PROMPTS)):
            samples.append(s := run(prompt, args.max_tokens))
            print(f"  prompt {prompt}: {s.tokens} tokens in {s.total:.2f} s", file=sys.stderr)
    return samples


def summarise(samples: list[Sample]) -> dict[str, Any]:
    rates = [s.tokens / (s.total - s.ttft) for s in samples if s.total > s.ttft and s.tokens > 0]
    tokens = sum(s.tokens for s in samples)
    return {
        "tokens_per_s_median": statistics.median(rates) if rates else 0.0,
        "tokens_per_s_mean": statistics.fmean(rates) if rates else 0.0,
        "tokens_per_s_overall": tokens / sum(s.total for s in samples),
        "ttft_ms_median": 1000 * statistics.median(s.ttft for s in samples),
        "requests": len(samples),
        "completion_tokens": tokens,
    }


def wait_healthy(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.2)
    raise SystemExit(f"server not healthy after {timeout:.0f} s:\n{log.read_text()[-2000:]}")


@contextmanager
def api_server(threads: int | None, timeout: float) -> Iterator[openai.OpenAI]:
    key = "mg-bench-" + secrets.token_urlsafe(24)
    with socket.socket() as sock:  # another process may grab the port before the server: rare
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    # Inherited MODELGRID_* settings (a config file, other models) would skew the comparison.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELGRID_")}
    if threads is not None:
        env[f"MODELGRID_MODELS__{DEFAULT_MODEL_ID.upper()}__N_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory(prefix="modelgrid-bench-") as tmp:
        env |= {"MODELGRID_DATA_DIR": tmp, "MODELGRID_ADMIN_KEY": key}
        env["MODELGRID_LOG_LEVEL"] = "warning"
        log = Path(tmp, "server.log")
        cmd = [sys.executable, "-m", "modelgrid", "serve", "--port", str(port)]
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_healthy(proc, port, log, timeout)
            with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key) as client:
                yield client
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_in_process(path: Path, args: argparse.Namespace) -> tuple[list[Sample], list[str], int]:
    kwargs = {"n_threads": args.threads} if args.threads is not None else {}
    llm = llama_cpp.Llama(str(path), n_ctx=2048, verbose=False, **kwargs)
    try:
        counts, texts = [], []
        for prompt in PROMPTS:  # untimed, for the exact token counts (see the docstring)
            done = local_chat(llm, prompt, args.max_tokens, args.seed, stream=False)
            assert not isinstance(done, Iterator)
            counts.append(done["usage"]["completion_tokens"])
            texts.append(done["choices"][0]["message"]["content"] or "")
        return measure(local_runner(llm, args.seed, counts), args), texts, int(llm.n_threads)
    finally:
        llm.close()


def run_api(args: argparse.Namespace) -> list[Sample]:
    with api_server(args.threads, args.startup_timeout) as client:
        return measure(api_runner(client, args.seed), args)


def check(local: list[Sample], remote: list[Sample], texts: list[str]) -> list[dict[str, Any]]:
    """Per prompt: at temperature 0 and one seed, both sides should give the same completion."""
    checks = []
    for i, text in enumerate(texts):
        want, got = [s for s in local if s.prompt == i], [s for s in remote if s.prompt == i]
        counts = sorted({s.tokens for s in want}), sorted({s.tokens for s in got})
        checks.append(
            {
                "prompt": i,
                "in_process_tokens": counts[0],
                "api_tokens": counts[1],
                "match": counts[0] == counts[1],
                "in_process_stream_same_text": all(s.text == text for s in want),
                "api_same_text": all(s.text == text for s in got),
            }
        )
    return checks


def print_table(report: dict[str, Any]) -> None:
    s = report["settings"]
    print(f"{s['model_file']}, llama-cpp-python {s['llama_cpp_python']}, ", end="")
    print(f"n_threads {s['n_threads']}, {s['cpu_count']} CPUs")
    print(f"max_tokens {s['max_tokens']}, repeats {s['repeats']}, seed {s['seed']}\n")
    print(f"{'':12}{'tok/s med':>11}{'tok/s mean':>12}{'tok/s all':>11}{'TTFT ms':>9}{'tokens':>8}")
    for name, key in (("in-process", "in_process"), ("API", "api")):
        r = report[key]
        print(
            f"{name:12}{r['tokens_per_s_median']:11.1f}{r['tokens_per_s_mean']:12.1f}"
            f"{r['tokens_per_s_overall']:11.1f}{r['ttft_ms_median']:9.1f}{r['completion_tokens']:8}"
        )
    print(
        f"\nAPI / in-process: tokens/s {report['ratio_tokens_per_s']:.3f} overall, "
        f"{report['ratio_tokens_per_s_median']:.3f} median (goal >= 0.9); "
        f"TTFT {report['ratio_ttft_median']:.2f}x ({report['ttft_ms_added_median']:+.1f} ms)\n"
    )
    for c in report["checks"]:
        print(
            f"prompt {c['prompt']}: tokens in-process {c['in_process_tokens']}, "
            f"API {c['api_tokens']}: {'same' if c['match'] else 'MISMATCH'}; text "
            f"{'same' if c['api_same_text'] else 'DIFFERS'}"
            + ("" if c["in_process_stream_same_text"] else " (in-process stream != counted run)")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=None, help="n_threads for both sides")
    parser.add_argument("--startup-timeout", type=float, default=120.0)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args()
    path = default_model_path()

    print("in-process:", file=sys.stderr)
    local, texts, n_threads = run_in_process(path, args)
    print("API:", file=sys.stderr)
    remote = run_api(args)

    ours, theirs = summarise(local), summarise(remote)
    checks = check(local, remote, texts)
    report = {
        "in_process": ours,
        "api": theirs,
        "ratio_tokens_per_s": theirs["tokens_per_s_overall"] / ours["tokens_per_s_overall"],
        "ratio_tokens_per_s_median": theirs["tokens_per_s_median"] / ours["tokens_per_s_median"],
        "ratio_ttft_median": theirs["ttft_ms_median"] / ours["ttft_ms_median"],
        "ttft_ms_added_median": theirs["ttft_ms_median"] - ours["ttft_ms_median"],
        "token_counts_match": all(c["match"] for c in checks),
        "checks": checks,
        "settings": {
            "max_tokens": args.max_tokens,
            "repeats": args.repeats,
            "seed": args.seed,
            "n_threads": n_threads,
            "n_threads_explicit": args.threads is not None,
            "cpu_count": os.cpu_count(),
            "llama_cpp_python": version("llama-cpp-python"),
            "model_file": path.name,
        },
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
