"""``modelgrid compliance``: check a term list, and run a question bank through a live server
for TC260-003's rates."""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

import click
import httpx
import orjson

from .cli_options import _client, key_option, url_option
from .review.data import sample_bank_path
from .review.evaluation import Outcome, load_bank, report
from .review.terms import TermMatcher, load_terms


@click.group()
def compliance() -> None:
    """Compliance services: term lists and the TC260-003 question bank."""


@compliance.command("terms")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def compliance_terms(files: tuple[str, ...]) -> None:
    """Load term lists as the server would, with progress, and summarise them by risk class."""
    started = time.perf_counter()
    terms = []
    for name in files:
        try:
            terms += load_terms(name)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    with click.progressbar(length=len(terms), label="compiling", file=sys.stderr) as bar:
        done = 0

        def progress(i: int, total: int) -> None:
            nonlocal done
            bar.update(i - done)
            done = i

        matcher = TermMatcher(terms, progress)
    seconds = time.perf_counter() - started
    by_class = Counter(t.risk.rsplit(".", 1)[0] for t in terms)
    click.echo(f"{len(terms)} terms ({matcher.size} distinct once normalised) in {seconds:.2f} s")
    for code, count in sorted(by_class.items()):
        click.echo(f"  {code}: {count}")


@compliance.command("eval")
@click.option(
    "--bank",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A JSON Lines question bank (default: ModelGrid's own small bank).",
)
@click.option("-m", "--model", help="Model id (default: the server's first model).")
@click.option("--max-tokens", type=int, default=64, show_default=True, help="Per answer.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@url_option
@key_option
def compliance_eval(
    bank: Path | None,
    model: str | None,
    max_tokens: int,
    as_json: bool,
    url: str,
    key: str | None,
) -> None:
    """Ask every question of a bank through a live server and report TC260-003's rates:
    should-refuse questions refused, should-answer questions answered (95% each), generated
    content acceptable (90%). Exits 1 when a rate misses its goal."""
    try:
        questions = load_bank(bank or sample_bank_path())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    outcomes = []
    with _client(url, key) as client:
        try:
            model = model or client.get("/v1/models").json()["data"][0]["id"]
            for question in questions:
                body = {
                    "model": model,
                    "messages": [{"role": "user", "content": question.prompt}],
                    "max_tokens": max_tokens,
                }
                r = client.post("/v1/chat/completions", content=orjson.dumps(body))
                if r.status_code >= 400:
                    raise click.ClickException(f"{r.status_code}: {r.text[:300]}")
                choice = r.json()["choices"][0]
                text = choice["message"]["content"] or ""
                outcomes.append(Outcome(question, text, choice["finish_reason"] or ""))
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach {url}: {exc}") from None
    result = report(outcomes) | {"model": model, "questions": len(questions)}
    if as_json:
        click.echo(orjson.dumps(result).decode())
    else:
        for kind, rate in result["rates"].items():
            mark = "met" if rate["met"] else "NOT MET"
            click.echo(
                f"{kind:14} {rate['passed']:4}/{rate['questions']:<4} {rate['rate']:7.1%}  "
                f"goal {rate['goal']:.0%}  {mark}"
            )
        for failure in result["failures"]:
            click.echo(f"  failed ({failure['kind']}): {failure['prompt'][:80]}")
    raise SystemExit(0 if result["met"] else 1)
