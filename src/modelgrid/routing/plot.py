"""The quality curves of a replay as a PNG: the policy, random routing and the oracle, against
the strong model's share of calls, with both models' own quality (RouteLLM's plot)."""

from __future__ import annotations

from pathlib import Path

from .replay import Replay, Table, oracle, random


def plot(result: Replay, table: Table, title: str, path: Path, label: str = "policy") -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display here
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for name, points, style in (
        (f"{label} (APGR {result.apgr:.3f})", result.points, "o-"),
        ("random (expected)", random(table), "--"),
        (f"oracle (APGR {result.oracle_apgr:.3f})", oracle(table, 100), "-"),
    ):
        axes.plot([p.strong_share * 100 for p in points], [p.quality for p in points], style,
                  label=name, markersize=3)  # fmt: skip
    axes.axhline(table.weak_quality, color="grey", linestyle=":", label="weak model")
    axes.axhline(table.strong_quality, color="red", linestyle=":", label="strong model")
    axes.set_xlabel("Strong model calls (%)")
    axes.set_ylabel("Quality")
    axes.set_title(title)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
