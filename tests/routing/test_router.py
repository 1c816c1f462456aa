"""A router trained on recorded results: held out by cross-validation, saved with the digests
of what it saw, and never replayed on those prompts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from modelgrid.cli import main
from modelgrid.routing.replay import Table, replay
from modelgrid.routing.router import Router, RouterError, cross_validated, features, train


def synthetic(n: int, seed: int) -> Table:
    """Questions the weak model gets wrong, and then says it is unsure; the strong model
    gets nearly all right. A cascade's verifier can learn to read that."""
    rng = np.random.default_rng(seed)
    weak = (rng.random(n) < 0.6).astype(float)
    strong = np.where(weak == 1, 1.0, (rng.random(n) < 0.9).astype(float))
    prompts = [f"question {seed}-{i}: what is {i} plus {i * 3}?" for i in range(n)]
    answers = [
        f"The answer is {4 * i}." if w else f"I am unsure, maybe {i}." for i, w in enumerate(weak)
    ]
    return Table(prompts, weak, strong, answers)


def test_features_are_unit_rows_of_fixed_width() -> None:
    x = features(["one two", "", "3 and 4"], dims=64)
    assert x.shape == (3, 66)
    assert np.allclose(np.linalg.norm(x[[0, 2]], axis=1), 1) and not x[1].any()


def test_a_cascade_router_learns_what_the_answers_say_held_out() -> None:
    table = synthetic(120, 1)
    router, held_out = train(table, "answer", folds=4)
    result = replay(held_out, table)
    # Near the oracle on held-out prompts (which tops out where the weak answers run out).
    assert result.apgr > 0.85 * result.oracle_apgr and result.cpt50 < result.oracle_cpt50 + 0.1
    # Prompts alone carry no such sign here: held out, about what random routing reaches.
    _, blind = train(table, "prompt", folds=4)
    assert replay(blind, table).apgr < 0.75
    fresh = synthetic(60, 2)
    on_fresh = replay(router.scores(fresh), fresh)
    assert on_fresh.apgr > 0.85 * on_fresh.oracle_apgr  # and on prompts it never saw


def test_cross_validation_never_scores_a_row_with_a_model_that_saw_it() -> None:
    # Labels that are pure noise: a model scored on its own training rows would still fit
    # them; held out, it cannot beat chance by much.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 300)).astype(np.float32)
    y = (rng.random(200) < 0.5).astype(float)
    held = cross_validated(x, y, folds=5)
    agreement = ((held > 0.5) == (y == 1)).mean()
    assert 0.3 < agreement < 0.7


def write_csv(path: Path, table: Table) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["prompt", "weak", "strong", "weak_response"])
        assert table.weak_answers is not None
        for row in zip(table.prompts, table.weak, table.strong, table.weak_answers, strict=True):
            writer.writerow([row[0], bool(row[1]), bool(row[2]), row[3]])


def test_train_then_replay_from_the_command_line(tmp_path: Path) -> None:
    seen, unseen = tmp_path / "seen.csv", tmp_path / "unseen.csv"
    write_csv(seen, synthetic(120, 1))
    write_csv(unseen, synthetic(60, 2))
    router = tmp_path / "router.json"
    common = ["--weak", "weak", "--strong", "strong"]
    trained = CliRunner().invoke(
        main,
        ["routing", "train", "--data", str(seen), *common, "--inputs", "answer", "--folds", "4",
         "--out", str(router), "--json"],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.output)["apgr"] > 0.7
    assert Router.load(router).held_out["apgr"] == pytest.approx(json.loads(trained.output)["apgr"])
    replayed = CliRunner().invoke(
        main,
        ["routing", "replay", "--data", str(unseen), *common, "--router", str(router), "--json"],
    )
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.output)["apgr"] > 0.7
    again = CliRunner().invoke(
        main, ["routing", "replay", "--data", str(seen), *common, "--router", str(router)]
    )
    assert again.exit_code != 0 and "training data" in again.output  # never scored on itself
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(RouterError, match="not a router file"):
        Router.load(bad)
    neither = CliRunner().invoke(main, ["routing", "replay", "--data", str(seen), *common])
    assert neither.exit_code != 0 and "--policy or --router" in neither.output
