"""``modelgrid routing``: routing policies replayed on recorded results, measured as RouteLLM
measures routers."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .routing.policies import POLICIES, scores_of
from .routing.replay import Replay, TableError, read_table, replay


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


@routing.command("replay")
@click.option(
    "--data",
    "data",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="RouteLLM's CSV: prompt, and a column per model.",
)
@click.option("--weak", required=True, help="The weak model's column.")
@click.option("--strong", required=True, help="The strong model's column.")
@click.option(
    "--policy", type=click.Choice(sorted(POLICIES)), required=True, help="How prompts are scored."
)
@click.option(
    "--drop",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Prompts to leave out (contaminated: seen in training).",
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
    policy: str,
    drop: Path | None,
    seed: int,
    plot_path: Path | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Replay a policy on recorded results: its quality curve against the share of strong
    calls, APGR and CPT(50%), CPT(80%), beside random routing and the oracle."""
    try:
        table = read_table(data, weak, strong).without(_dropped(drop))
    except TableError as exc:
        raise click.ClickException(str(exc)) from None
    if table.strong_quality == table.weak_quality:
        raise click.ClickException("both models score the same: there is no gap to recover")
    result = replay(scores_of(policy, table.prompts, seed), table)
    if plot_path is not None:
        from .routing.plot import plot

        plot(result, table, f"{policy} on {data.name}", plot_path, label=policy)
    if as_json:
        click.echo(json.dumps(_as_dict(result)))
        return
    _print(result, policy)


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
