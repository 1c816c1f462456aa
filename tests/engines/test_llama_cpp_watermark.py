"""The watermark on the real embedded model: it generates, and the detector tells its text
from the same model's unwatermarked text and from text no model wrote."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from modelgrid.engines.llama_cpp import LlamaCppEngine
from modelgrid.errors import ServerError
from modelgrid.settings import LlamaCppSettings
from modelgrid.types import GenerationRequest, Sampling, Tenant
from modelgrid.watermark import KEY_FILE, Watermark

KEY = bytes(range(100, 132))
TOKENS = 200
# The model's own defaults (temperature 0.8, top-p 0.95): seeded, so the test is repeatable.
DEFAULT = Sampling(
    max_tokens=TOKENS,
    temperature=None,
    top_p=None,
    presence_penalty=0.0,
    frequency_penalty=0.0,
    seed=11,
)
PROMPTS = [
    "Write a story about a fox who learns to fly.",
    "Tell me about the history of bread.",
    "Give advice to a new student starting university.",
]
PROSE = [
    "The harbour was quiet that morning. A few gulls argued over the remains of a fish on the "
    "slipway, and the tide, already turning, pulled at the ropes of the small boats moored "
    "along the wall. Martha walked down from the cottages with her coat buttoned to the chin, "
    "as she had done every day for thirty years, to see whether the ferry would run. The "
    "ferryman's hut had its shutters closed. She waited a while on the bench by the lifeboat "
    "station, watching the grey water, and thought about the letter in her pocket that she had "
    "not yet found the courage to open.",
    "Bread has been made for at least fourteen thousand years. The oldest remains, found at a "
    "site in north-eastern Jordan, were baked from wild cereals and the roots of plants long "
    "before anybody farmed. Leavened loaves came later: the Egyptians are usually credited, "
    "though yeast floats in the air everywhere and any dough left out for long enough will "
    "rise on its own. What changed with each century was less the method than the flour, "
    "which grew whiter and finer as mills improved, until white bread became a sign of wealth "
    "and brown bread the food of the poor, an order that has since been turned upside down.",
    "If you are starting at university, go to the first lectures even when the slides are "
    "online, because that is where you meet the people you will study with. Cook a few simple "
    "meals and learn them well. Keep a calendar, since nobody will remind you of deadlines. Say "
    "yes to one society and no to the other five. Your tutors hold office hours for a reason, "
    "and most of them are glad when a student turns up with a question. Sleep more than you "
    "think you need, and phone home now and then, even if only to complain about the rain.",
]


def ask(prompt: str, watermark: bool, sampling: Sampling = DEFAULT) -> GenerationRequest:
    return GenerationRequest(
        sampling, messages=[{"role": "user", "content": prompt}], watermark=watermark
    )


async def generate(engine: LlamaCppEngine, request: GenerationRequest) -> str:
    prepared = await engine.prepare(request)
    text = "".join([p.text async for p in engine.generate(prepared, Tenant("t"))])
    # The worker hands its slot back through this loop a moment after the last piece; these
    # tests run each on a loop of its own, and a loop closed before that callback runs would
    # keep the slot for ever (a server has one loop for its life).
    for _ in range(5000):  # at most 5 s
        if not engine.stats().busy:
            break
        await asyncio.sleep(0.001)
    return text


def start(watermark: Watermark | None) -> LlamaCppEngine:
    engine = LlamaCppEngine("smol", LlamaCppSettings(n_ctx=1024, n_threads=1), watermark)
    asyncio.run(engine.start())  # the queue makes its futures on whichever loop then uses it
    return engine


@pytest.fixture(scope="module")
def marked() -> Iterator[LlamaCppEngine]:
    engine = start(Watermark(KEY))
    yield engine
    asyncio.run(engine.close())


@pytest.fixture(scope="module")
def texts(marked: LlamaCppEngine) -> dict[bool, list[str]]:
    """Each prompt answered with the watermark (True) and without (False), one seed."""

    async def run() -> dict[bool, list[str]]:
        return {
            mark: [await generate(marked, ask(p, mark)) for p in PROMPTS] for mark in (True, False)
        }

    return asyncio.run(run())


def test_watermarked_text_is_detected(marked: LlamaCppEngine, texts: dict[bool, list[str]]) -> None:
    for text in texts[True]:
        result = marked.detect_watermark(text)
        # About 200 tokens in, fewer scored: the first two have no context, repeats count once.
        assert result["tokens_scored"] > 120, text
        assert result["z_score"] >= 4 and result["watermarked"], (result, text)
        assert result["p_value"] < 1e-4


def test_the_same_answers_without_it_are_not(
    marked: LlamaCppEngine, texts: dict[bool, list[str]]
) -> None:
    for text in texts[False]:
        result = marked.detect_watermark(text)
        assert result["z_score"] < 4 and not result["watermarked"], (result, text)
    assert texts[True] != texts[False]


def test_text_no_model_wrote_is_not_detected(marked: LlamaCppEngine) -> None:
    for paragraph in PROSE:
        result = marked.detect_watermark(paragraph)
        assert result["tokens_scored"] > 90
        assert abs(result["z_score"]) < 4 and not result["watermarked"], result


def test_short_text_gives_no_score(marked: LlamaCppEngine) -> None:
    result = marked.detect_watermark("Hi")
    assert result["z_score"] is None and result["watermarked"] is False


@pytest.mark.anyio
async def test_seeded_watermarked_generation_reproduces(marked: LlamaCppEngine) -> None:
    hot = replace(DEFAULT, max_tokens=24, temperature=1.2, seed=5)
    first = await generate(marked, ask(PROMPTS[0], True, hot))
    await generate(marked, ask(PROMPTS[0], True, replace(hot, seed=6)))
    assert await generate(marked, ask(PROMPTS[0], True, hot)) == first


@pytest.mark.anyio
async def test_without_the_flag_nothing_changes(marked: LlamaCppEngine) -> None:
    plain = LlamaCppEngine("plain", LlamaCppSettings(n_ctx=1024, n_threads=1))
    await plain.start()
    try:
        hot = replace(DEFAULT, max_tokens=24, temperature=1.2, seed=5)
        expected = await generate(plain, ask(PROMPTS[1], False, hot))
        assert await generate(marked, ask(PROMPTS[1], False, hot)) == expected
        with pytest.raises(ServerError, match="no watermark key"):
            await plain.prepare(ask(PROMPTS[1], True, hot))
        with pytest.raises(ServerError, match="no watermark key"):
            plain.detect_watermark(expected)
    finally:
        await plain.close()


def test_detection_tokens_are_the_texts_own(marked: LlamaCppEngine) -> None:
    model: Any = marked._models[0]
    ids = marked.tokenize_for_detection("<|im_end|> Hello there")
    assert model.token_bos() not in ids
    assert ids == model.tokenize(b"<|im_end|> Hello there", add_bos=False, special=False)
    assert len(ids) > 3  # the special token's spelling, read as plain text


def cli(*args: str, data_dir: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELGRID_")}
    return subprocess.run(
        [sys.executable, "-m", "modelgrid", "watermark", "detect", *args],
        env={**env, "MODELGRID_DATA_DIR": str(data_dir)},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_detects_a_file_with_a_key_file(tmp_path: Path, texts: dict[bool, list[str]]) -> None:
    (tmp_path / "answer.txt").write_text(texts[True][0])
    (tmp_path / "my.key").write_bytes(KEY)
    done = cli(
        str(tmp_path / "answer.txt"),
        "--key-file",
        str(tmp_path / "my.key"),
        "--json",
        data_dir=tmp_path / "nowhere",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["watermarked"] is True and result["z_score"] >= 4 and result["threshold"] == 4
    assert set(result) == {
        "z_score",
        "p_value",
        "tokens_scored",
        "green_tokens",
        "watermarked",
        "threshold",
    }


def test_cli_reads_stdin_with_the_data_dirs_key(
    tmp_path: Path, texts: dict[bool, list[str]]
) -> None:
    (tmp_path / KEY_FILE).write_bytes(KEY)
    marked_out = cli("-", data_dir=tmp_path, stdin=texts[True][1])
    assert marked_out.returncode == 0, marked_out.stderr
    assert marked_out.stdout.startswith("z = ") and marked_out.stdout.rstrip().endswith(
        ": watermarked"
    )
    plain_out = cli("-", data_dir=tmp_path, stdin=PROSE[0])
    assert plain_out.returncode == 0 and "not watermarked" in plain_out.stdout
    missing = cli("-", data_dir=tmp_path / "empty", stdin=PROSE[0])
    assert missing.returncode != 0 and "no watermark key" in missing.stderr
    assert not (tmp_path / "empty").exists()  # detecting never makes a key
