"""RouteLLM's metrics on a table small enough to work out by hand, and the replay command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from modelgrid.cli import main
from modelgrid.routing.policies import scores_of
from modelgrid.routing.replay import (
    Point,
    Table,
    TableError,
    apgr,
    cpt,
    curve,
    oracle,
    read_table,
    replay,
)

# Prompt 0 both answer; 1 and 2 only the strong model; 3 neither. Weak 0.25, strong 0.75.
TABLE = Table(["a", "b", "c", "d"], np.array([1.0, 0, 0, 0]), np.array([1.0, 1, 1, 0]))
SCORES = np.array([0.1, 0.9, 0.5, 0.3])


def test_the_curve_has_a_point_per_quantile_threshold() -> None:
    # Quantiles of the scores at 0, 1/4, 1/2, 3/4, 1: 0.1, 0.25, 0.4, 0.6, 0.9; a prompt goes
    # strong at a score >= each (> the last).
    assert curve(SCORES, TABLE, bins=4) == [
        Point(0.0, 0.25),
        Point(0.25, 0.5),
        Point(0.5, 0.75),
        Point(0.75, 0.75),
        Point(1.0, 0.75),
    ]


def test_apgr_and_cpt_as_worked_out_by_hand() -> None:
    points = curve(SCORES, TABLE, bins=4)
    # Trapezoids: 0.09375 + 0.15625 + 0.1875 + 0.1875 = 0.625; (0.625 - 0.25) / (0.75 - 0.25).
    assert apgr(points, TABLE) == pytest.approx(0.75)
    assert cpt(points, 0.5, TABLE) == pytest.approx(0.25)  # quality 0.5 at 25% strong
    assert cpt(points, 0.8, TABLE) == pytest.approx(0.4)  # 0.65: 60% of the way to 50%


def test_the_baselines() -> None:
    result = replay(SCORES, TABLE, bins=4)
    assert result.random_apgr == pytest.approx(0.5)
    assert result.oracle_cpt50 == pytest.approx(0.25)  # one strong call that gains
    best = oracle(TABLE, 4)
    assert [p.quality for p in best] == pytest.approx([0.25, 0.5, 0.75, 0.75, 0.75])


def test_policies_score_every_prompt_and_break_ties() -> None:
    prompts = ["one", "one two three", "3 apples and 4 pears", "two words"]
    length = scores_of("length", prompts)
    assert np.argsort(length).tolist() == [0, 3, 1, 2]
    assert len(set(scores_of("numbers", prompts).tolist())) == 4  # no two alike
    assert np.array_equal(scores_of("random", prompts, 7), scores_of("random", prompts, 7))


CSV = 'prompt,weak,strong\na,True,True\nb,False,True\n"c, with a comma",False,True\nd,False,False\n'


def test_the_replay_command(tmp_path: Path) -> None:
    data = tmp_path / "results.csv"
    data.write_text(CSV, encoding="utf-8")
    drop = tmp_path / "contaminated.jsonl"
    drop.write_text(json.dumps({"eval_prompt": "d"}) + "\n", encoding="utf-8")
    plot = tmp_path / "curve.png"
    args = ["routing", "replay", "--data", str(data), "--weak", "weak", "--strong", "strong"]
    run = CliRunner().invoke(
        main, [*args, "--policy", "length", "--json", "--drop", str(drop), "--plot", str(plot)]
    )
    assert run.exit_code == 0, run.output
    found = json.loads(run.output)
    assert {"apgr", "cpt50", "cpt80", "random_apgr", "oracle_cpt50"} <= set(found)
    assert found["prompts"] == 3 and found["random_apgr"] == pytest.approx(0.5)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = CliRunner().invoke(main, [*args, "--policy", "random"])
    assert "APGR" in text.output and "CPT(50%)" in text.output
    wrong = CliRunner().invoke(main, [*args[:-1], "gpt-9", "--policy", "random"])
    assert wrong.exit_code != 0 and "no column 'gpt-9'" in wrong.output


def test_unreadable_tables_are_said_to_be(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,weak,strong\na,maybe,True\n", encoding="utf-8")
    with pytest.raises(TableError, match="neither True/False nor a number"):
        read_table(bad, "weak", "strong")
    empty = tmp_path / "empty.csv"
    empty.write_text("prompt,weak,strong\n", encoding="utf-8")
    with pytest.raises(TableError, match="no rows"):
        read_table(empty, "weak", "strong")
