"""``modelgrid watermark detect``: whether a text carries the operator's watermark.

It needs the key and the model's tokenizer (its vocabulary alone loads in a fraction of a
second), never a server or the model's weights."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import click
import orjson

from .cli_options import _settings, config_option
from .settings import DEFAULT_MODEL_ID, LlamaCppSettings, Settings
from .watermark import KEY_FILE, Detection, Watermark, read_key


@click.group()
def watermark() -> None:
    """The green-list watermark of the embedded engine's output."""


@watermark.command("detect")
@config_option
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help=f"The key (default: {KEY_FILE} in the data directory).",
)
@click.option("--json", "as_json", is_flag=True, help="The result as one JSON object.")
def detect_command(config: str | None, file: TextIO, key_file: Path | None, as_json: bool) -> None:
    """Score FILE (- for stdin) for the watermark: z-score, p-value and verdict."""
    # Imported here: every other command would otherwise wait for llama.cpp to load.
    from .engines.llama_cpp import detection_tokens, load_vocabulary

    settings = _settings(config)
    text = file.read()
    key = _key(key_file or settings.data_dir / KEY_FILE)
    tokenizer = load_vocabulary(_model_path(settings))
    try:
        marked = Watermark(key)
        result = marked.detect(
            marked.green_list(tokenizer.n_vocab()), detection_tokens(tokenizer, text)
        )
    finally:
        tokenizer.close()
    click.echo(orjson.dumps(result.as_dict()).decode() if as_json else _verdict(result))


def _key(path: Path) -> bytes:
    try:
        return read_key(path)
    except FileNotFoundError:
        # Never made here: a new key would find no watermark in anything.
        raise click.ClickException(
            f"no watermark key at {path}: a server makes it on first start; or pass --key-file"
        ) from None
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


def _model_path(settings: Settings) -> Path:
    """The default model's GGUF file: its first embedded deployment's, else the shipped one."""
    from .engines.llama_cpp import default_model_path

    model = settings.models.get(DEFAULT_MODEL_ID)
    for deployment in model.deployments if model else []:
        if isinstance(deployment, LlamaCppSettings) and deployment.path:
            return Path(deployment.path)
    return default_model_path()


def _verdict(result: Detection) -> str:
    counts = f"{result.green_tokens} of {result.tokens_scored} tokens green"
    if result.z_score is None or result.p_value is None:
        return f"too short to tell ({counts})"
    verdict = "watermarked" if result.watermarked else "not watermarked"
    return (
        f"z = {result.z_score:.2f}, p = {result.p_value:.3g} ({counts}; "
        f"threshold z >= {result.threshold:g}): {verdict}"
    )
