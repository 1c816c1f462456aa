"""``modelgrid routing``: routing policies replayed on recorded results, measured as RouteLLM
measures routers."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Callable
from pathlib import Path

import click

from .cli_options import _settings, config_option
from .routing.policies import POLICIES, scores_of
from .routing.replay import Replay, Table, TableError, read_table, replay
from .routing.router import Router, RouterError, digest, train
from .storage.database import Database
from .storage.shadow import Outcome, ShadowStore


@click.group()
def routing() -> None:
    """Large-small routing: which model should answer, proven on recorded results."""


def _dropped(path: Path | None) -> list[str]:
    """Prompts to leave out: RouteLLM's contaminated-prompt files (JSON Lines with an
    ``eval_prompt``), or one prompt per line."""
    if path is None:
        return []
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            found.append(str(json.loads(line)["eval_prompt"]))
        except (ValueError, KeyError, TypeError):
            found.append(line)
    return found


def recorded_options(command: Callable[..., None]) -> Callable[..., None]:
    """--data, --weak, --strong and --drop: the recorded results both commands read."""
    for option in reversed(
        [
            click.option(
                "--data",
                "data",
                required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                help="RouteLLM's CSV: prompt, a column per model (True/False or a score), "
                "optionally <model>_response.",
            ),
            click.option("--weak", required=True, help="The weak model's column."),
            click.option("--strong", required=True, help="The strong model's column."),
            click.option(
                "--drop",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                help="Prompts to leave out (contaminated: seen in training).",
            ),
        ]
    ):
        command = option(command)
    return command


@routing.command("replay")
@recorded_options
@click.option("--policy", type=click.Choice(sorted(POLICIES)), help="How prompts are scored.")
@click.option(
    "--router",
    "router_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Or a router from `routing train`.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="For the random policy.")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the curves to this PNG.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def routing_replay(
    data: Path,
    weak: str,
    strong: str,
    policy: str | None,
    router_path: Path | None,
    drop: Path | None,
    seed: int,
    plot_path: Path | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Replay a policy on recorded results: its quality curve against the share of strong
    calls, APGR and CPT(50%), CPT(80%), beside random routing and the oracle."""
    if (policy is None) == (router_path is None):
        raise click.UsageError("give --policy or --router")
    table = _table(data, weak, strong, drop)
    if router_path is not None:
        router = _router(router_path)
        seen = len(table.prompts)
        # A router scored on prompts it was trained on would flatter itself.
        table = table.without([p for p in table.prompts if digest(p) in router.trained_on])
        if not table.prompts:
            raise click.ClickException(
                "every prompt here was in the router's training data: replay it on other "
                "data (train printed its cross-validated figures)"
            )
        if len(table.prompts) < seen:
            left_out = seen - len(table.prompts)
            click.echo(f"left out {left_out} prompts the router was trained on", err=True)
        try:
            scores = router.scores(table)
        except RouterError as exc:
            raise click.ClickException(str(exc)) from None
        name = router_path.name
    else:
        assert policy is not None
        scores, name = scores_of(policy, table.prompts, seed), policy
    _gap(table)
    result = replay(scores, table)
    if plot_path is not None:
        from .routing.plot import plot

        plot(result, table, f"{name} on {data.name}", plot_path, label=name)
    if as_json:
        click.echo(json.dumps(_as_dict(result)))
        return
    _print(result, name)


def _as_dict(r: Replay) -> dict[str, object]:
    return {
        "apgr": r.apgr,
        "cpt50": r.cpt50,
        "cpt80": r.cpt80,
        "random_apgr": r.random_apgr,
        "oracle_cpt50": r.oracle_cpt50,
        "oracle_apgr": r.oracle_apgr,
        "weak_quality": r.weak_quality,
        "strong_quality": r.strong_quality,
        "prompts": r.prompts,
        "curve": [{"strong_share": p.strong_share, "quality": p.quality} for p in r.points],
    }


def _print(r: Replay, policy: str) -> None:
    click.echo(f"{r.prompts} prompts; weak {r.weak_quality:.4f}, strong {r.strong_quality:.4f}")
    click.echo(f"{'strong calls':>13}  {'quality':>8}  {'PGR':>6}")
    gap = r.strong_quality - r.weak_quality
    for p in r.points:
        click.echo(
            f"{p.strong_share:>12.1%}  {p.quality:>8.4f}  {(p.quality - r.weak_quality) / gap:>6.3f}"
        )
    click.echo(
        f"{policy}: APGR {r.apgr:.3f}, CPT(50%) {r.cpt50:.1%}, CPT(80%) {r.cpt80:.1%}; "
        f"random: APGR {r.random_apgr:.3f}, CPT(50%) 50.0%; "
        f"oracle: APGR {r.oracle_apgr:.3f}, CPT(50%) {r.oracle_cpt50:.1%}"
    )


@routing.command("train")
@recorded_options
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the router.",
)
@click.option(
    "--inputs",
    type=click.Choice(["prompt", "answer"]),
    default="prompt",
    show_default=True,
    help="prompt: route before generating; answer: a cascade's verifier, which reads the "
    "weak model's answer too.",
)
@click.option(
    "--folds",
    type=click.IntRange(2, 20),
    default=5,
    show_default=True,
    help="Cross-validation folds for the held-out figures.",
)
@click.option("--json", "as_json", is_flag=True, help="The held-out figures as one JSON object.")
def routing_train(
    data: Path,
    weak: str,
    strong: str,
    out: Path,
    inputs: str,
    folds: int,
    drop: Path | None,
    as_json: bool,
) -> None:
    """Fit a router on recorded results and print its held-out figures: every prompt scored
    by a model trained on the other folds only. The router written is trained on them all."""
    table = _table(data, weak, strong, drop)
    _gap(table)
    try:
        router, held_out = train(table, "answer" if inputs == "answer" else "prompt", folds)
    except RouterError as exc:
        raise click.ClickException(str(exc)) from None
    result = replay(held_out, table)
    figures = _as_dict(result)
    held = {k: float(v) for k, v in figures.items() if isinstance(v, float)}
    Router(router.inputs, router.model, router.trained_on, held, router.quantiles).save(out)
    if as_json:
        click.echo(json.dumps(figures))
        return
    click.echo(f"held out ({folds}-fold cross-validation):", err=True)
    _print(result, f"router ({inputs})")
    click.echo(f"wrote {out}", err=True)


def _table(data: Path, weak: str, strong: str, drop: Path | None) -> Table:
    try:
        return read_table(data, weak, strong).without(_dropped(drop))
    except TableError as exc:
        raise click.ClickException(str(exc)) from None


def _gap(table: Table) -> None:
    if table.strong_quality == table.weak_quality:
        raise click.ClickException("both models score the same: there is no gap to recover")


def _router(path: Path) -> Router:
    try:
        return Router.load(path)
    except RouterError as exc:
        raise click.ClickException(str(exc)) from None


@routing.command("shadow")
@config_option
@click.option("--auto", "name", required=True, help="The auto model whose pairs to write.")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the CSV (RouteLLM's columns: `routing train --data` reads it).",
)
def routing_shadow(config: str | None, name: str, out: Path) -> None:
    """Shadow evaluation's judged pairs of an auto model as a table to train a router on:
    a ``prompt`` column, one True/False column per model and ``<model>_response`` columns.
    A pair counts once both answers have a verdict: from the caller's reference answer, the
    judge model, or (for the answer the caller got) the caller's feedback."""
    settings = _settings(config)
    auto = settings.auto.get(name)
    if auto is None:
        raise click.ClickException(f"no auto model {name!r} in the configuration")

    async def run() -> tuple[list[Outcome], int]:
        db = Database(settings.resolved_database_url)
        try:
            await db.migrate()
            store = ShadowStore(db)
            return await store.outcomes(name, auto.small, auto.large), len(await store.pairs(name))
        finally:
            await db.close()

    outcomes, pairs = asyncio.run(run())
    small, large = auto.small, auto.large
    with out.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["prompt", small, large, f"{small}_response", f"{large}_response"])
        for o in outcomes:
            writer.writerow(
                [o.prompt, o.small_correct, o.large_correct, o.small_answer, o.large_answer]
            )
    click.echo(f"wrote {len(outcomes)} judged pairs of {pairs} to {out}", err=True)
