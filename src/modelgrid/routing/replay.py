"""Routing replayed on recorded results (pure): the quality a routing policy reaches at each
share of calls to the strong model, and RouteLLM's metrics of that curve.

Definitions as RouteLLM's (``routellm/evals``): a policy scores each prompt; thresholds at the
scores' deciles route a prompt to the strong model when its score reaches them, giving one
(strong share, quality) point each. PGR at a point is (quality - weak) / (strong - weak);
CPT(x) is the strong share at which the curve, interpolated, first recovers x of the gap; APGR
is the area under the quality curve, less the weak model's, over the strong model's less the
weak model's. Quality is a correct answer's 1 (GSM8K) or a judge's score (MT-Bench).
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BINS = 10  # RouteLLM's num_results


@dataclass(frozen=True, slots=True)
class Table:
    """Each prompt's quality from the weak model and from the strong one."""

    prompts: list[str]
    weak: np.ndarray
    strong: np.ndarray
    weak_answers: list[str] | None = None  # the weak model's responses, where recorded

    @property
    def weak_quality(self) -> float:
        return float(self.weak.mean())

    @property
    def strong_quality(self) -> float:
        return float(self.strong.mean())

    def without(self, prompts: Iterable[str]) -> Table:
        """The table less ``prompts`` (those a router was trained on: contaminated)."""
        dropped = {p.strip() for p in prompts}
        keep = np.array([p.strip() not in dropped for p in self.prompts], dtype=bool)
        answers = self.weak_answers
        return Table(
            [p for p, k in zip(self.prompts, keep, strict=True) if k],
            self.weak[keep],
            self.strong[keep],
            None if answers is None else [a for a, k in zip(answers, keep, strict=True) if k],
        )


class TableError(ValueError):
    pass


def read_table(path: Path, weak: str, strong: str) -> Table:
    """RouteLLM's CSV: a ``prompt`` column and one column per model, True/False or a score,
    and optionally ``<model>_response`` columns (the weak model's is kept)."""
    csv.field_size_limit(sys.maxsize)  # responses span many lines
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        missing = [c for c in ("prompt", weak, strong) if c not in (reader.fieldnames or [])]
        if missing:
            raise TableError(f"{path}: no column {missing[0]!r} (columns: {reader.fieldnames})")
        rows = list(reader)
    if not rows:
        raise TableError(f"{path}: no rows")
    answered = f"{weak}_response"
    return Table(
        [r["prompt"] for r in rows],
        np.array([_quality(r[weak], weak) for r in rows], dtype=np.float64),
        np.array([_quality(r[strong], strong) for r in rows], dtype=np.float64),
        [r[answered] for r in rows] if answered in rows[0] else None,
    )


def _quality(value: str, column: str) -> float:
    if value in ("True", "true", "1"):
        return 1.0
    if value in ("False", "false", "0"):
        return 0.0
    try:
        return float(value)
    except ValueError:
        raise TableError(
            f"column {column!r}: {value!r} is neither True/False nor a number"
        ) from None


@dataclass(frozen=True, slots=True)
class Point:
    strong_share: float  # 0..1
    quality: float


def curve(scores: np.ndarray, table: Table, bins: int = BINS) -> list[Point]:
    """The policy's points: one per threshold at the scores' quantiles, as RouteLLM takes
    them (``pd.qcut``'s bin edges; ``>=`` each edge, ``>`` the last), by strong share."""
    edges = np.unique(np.quantile(scores, np.linspace(0, 1, bins + 1)))
    points = []
    for i, edge in enumerate(edges):
        strong = scores >= edge if i != len(edges) - 1 else scores > edge
        quality = np.where(strong, table.strong, table.weak).mean()
        points.append(Point(float(strong.mean()), float(quality)))
    return sorted(points, key=lambda p: (p.strong_share, p.quality))


def oracle(table: Table, resolution: int = 1000) -> list[Point]:
    """The best any router could do: each strong call where it gains most, at each share
    (a fraction of a call counting in proportion, as RouteLLM's optimum does)."""
    gains = np.sort(np.clip(table.strong - table.weak, 0, None))[::-1]
    total = np.concatenate([[0.0], np.cumsum(gains)])
    n = len(gains)
    points = []
    for share in np.linspace(0, 1, resolution + 1):
        calls = share * n
        whole = int(calls)
        gained = total[whole] + (gains[whole] * (calls - whole) if whole < n else 0.0)
        points.append(Point(float(share), float(table.weak.sum() + gained) / n))
    return points


def random(table: Table) -> list[Point]:
    """A router that picks at random: in expectation, the straight line between the two
    models (RouteLLM's random router is one draw of it)."""
    return [
        Point(share, table.weak_quality + share * (table.strong_quality - table.weak_quality))
        for share in (0.0, 1.0)
    ]


def pgr(quality: float, table: Table) -> float:
    return (quality - table.weak_quality) / (table.strong_quality - table.weak_quality)


def apgr(points: list[Point], table: Table) -> float:
    shares = np.array([p.strong_share for p in points])
    qualities = np.array([p.quality for p in points])
    span = float(shares[-1] - shares[0])
    area = float(((qualities[1:] + qualities[:-1]) / 2 * np.diff(shares)).sum())  # trapezoids
    weak, strong = table.weak_quality * span, table.strong_quality * span
    return (area - weak) / (strong - weak)


def cpt(points: list[Point], recovered: float, table: Table) -> float:
    """The strong share at which the curve recovers ``recovered`` of the gap (RouteLLM's
    ``np.interp`` over the points, quality to share)."""
    target = table.weak_quality + recovered * (table.strong_quality - table.weak_quality)
    qualities = np.maximum.accumulate([p.quality for p in points])  # interp wants a rise
    return float(np.interp(target, qualities, [p.strong_share for p in points]))


@dataclass(frozen=True, slots=True)
class Replay:
    points: list[Point]
    apgr: float
    cpt50: float
    cpt80: float
    random_apgr: float
    oracle_cpt50: float
    oracle_apgr: float
    weak_quality: float
    strong_quality: float
    prompts: int


def replay(scores: np.ndarray, table: Table, bins: int = BINS) -> Replay:
    points = curve(scores, table, bins)
    best, chance = oracle(table), random(table)
    return Replay(
        points,
        apgr(points, table),
        cpt(points, 0.5, table),
        cpt(points, 0.8, table),
        apgr(chance, table),
        cpt(best, 0.5, table),
        apgr(best, table),
        table.weak_quality,
        table.strong_quality,
        len(table.prompts),
    )
