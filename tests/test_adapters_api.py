"""A layer on the embedded model with its own LoRA adapter, end to end: the same question, at
temperature 0, answered differently by the layer and by its base."""

from __future__ import annotations

from pathlib import Path

import openai

from modelgrid.engines.llama_cpp import default_model_path

from .engines.lora import write_lora
from .services import run_server

CONFIG = """
[models.smollm2-135m-instruct]
n_ctx = 512

[layers."smollm2-135m-instruct/tuned"]
adapter = "{adapter}"
"""


def test_a_layer_answers_with_its_adapters_weights(tmp_path: Path) -> None:
    adapter = write_lora(tmp_path / "tuned.gguf", default_model_path(), seed=3)
    with run_server(tmp_path / "server", CONFIG.format(adapter=adapter)) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key=server.admin_key, max_retries=0)

        def ask(model: str) -> str:
            reply = client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": "What is the capital of France?"}],
                max_tokens=12,
                temperature=0,
                seed=1,
            )
            return reply.choices[0].message.content or ""

        base, tuned = ask("smollm2-135m-instruct"), ask("smollm2-135m-instruct/tuned")
        assert base and tuned and base != tuned
        assert ask("smollm2-135m-instruct") == base  # the base model's own weights again
