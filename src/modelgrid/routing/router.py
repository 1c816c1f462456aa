"""A router learned from recorded results (pure): logistic regression over hashed words and
word pairs of the prompt (route before generating) or of the prompt and the small model's
answer (a cascade's verifier, which pays for the small model's answer first). It predicts
whether the strong model does better than the weak one.

Held-out figures come from k-fold cross-validation: each prompt is scored by a model trained
on the other folds only. The saved router, trained on every row, carries digests of the
prompts it saw, and a replay leaves those out.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .replay import Table

DIMS = 1 << 12
_WORD = re.compile(r"[a-z]+|\d+|[^\sa-z\d]")


def digest(prompt: str) -> str:
    return hashlib.sha256(prompt.strip().encode("utf-8")).hexdigest()[:16]


def features(texts: Sequence[str], dims: int = DIMS) -> np.ndarray:
    """Each text as a row: log counts of its hashed words and word pairs, and of its length
    and its numbers, normalised to length 1."""
    rows = np.zeros((len(texts), dims + 2), dtype=np.float32)
    for i, text in enumerate(texts):
        words = _WORD.findall(text.lower())
        for token in words + [a + " " + b for a, b in itertools.pairwise(words)]:
            rows[i, zlib.crc32(token.encode()) % dims] += 1.0
        rows[i, dims] = math.log1p(len(words))
        rows[i, dims + 1] = math.log1p(sum(w.isdigit() for w in words))
    rows = np.log1p(rows)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    normalised: np.ndarray = rows / np.where(norms == 0, 1, norms)
    return normalised


@dataclass(frozen=True, slots=True)
class Logistic:
    weights: np.ndarray
    bias: float

    def scores(self, x: np.ndarray) -> np.ndarray:
        found: np.ndarray = 1 / (1 + np.exp(-(x @ self.weights + self.bias)))
        return found


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 300) -> Logistic:
    """L2-regularised logistic regression by Newton's method on the bias and gradient
    descent with a backtracking step on the weights: small, dense, and deterministic."""
    w = np.zeros(x.shape[1], dtype=np.float64)
    positive = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    b = math.log(positive / (1 - positive))
    step = 4.0
    previous = _loss(x, y, w, b, l2)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        grad_w = x.T @ (p - y) / len(y) + l2 * w
        grad_b = float((p - y).mean())
        while step > 1e-6:
            candidate_w, candidate_b = w - step * grad_w, b - step * grad_b
            loss = _loss(x, y, candidate_w, candidate_b, l2)
            if loss <= previous:
                w, b, previous = candidate_w, candidate_b, loss
                step *= 1.5
                break
            step /= 2
        else:
            break
    return Logistic(w.astype(np.float32), float(b))


def _loss(x: np.ndarray, y: np.ndarray, w: np.ndarray, b: float, l2: float) -> float:
    z = x @ w + b
    # log(1 + e^z) - y z, stably
    return float((np.logaddexp(0, z) - y * z).mean() + l2 / 2 * float(w @ w))


def cross_validated(
    x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0, l2: float = 1e-3
) -> np.ndarray:
    """Each row's score from a model that never saw it."""
    order = np.random.default_rng(seed).permutation(len(y))
    scores = np.zeros(len(y), dtype=np.float64)
    for k in range(folds):
        held = order[k::folds]
        train = np.setdiff1d(order, held)
        scores[held] = fit(x[train], y[train], l2).scores(x[held])
    return scores


Inputs = Literal["prompt", "answer"]  # before generating, or after the small model answered
FORMAT = "modelgrid-router/1"


class RouterError(ValueError):
    pass


def texts_of(table: Table, inputs: Inputs) -> list[str]:
    if inputs == "prompt":
        return list(table.prompts)
    if table.weak_answers is None:
        raise RouterError("a cascade router reads the weak model's answers: the data has no "
                          "'<weak>_response' column")  # fmt: skip
    return [f"{p}\n\n{a}" for p, a in zip(table.prompts, table.weak_answers, strict=True)]


def labels(table: Table) -> np.ndarray:
    """1 where the strong model does better than the weak one: where a strong call pays."""
    found: np.ndarray = (table.strong > table.weak).astype(np.float64)
    return found


@dataclass(frozen=True, slots=True)
class Router:
    inputs: Inputs
    model: Logistic
    trained_on: frozenset[str]  # digests of the training prompts
    held_out: dict[str, float]
    # Percentiles 0..100 of the held-out scores: where to set the threshold for a share of
    # large-model calls on traffic like the training data's.
    quantiles: tuple[float, ...] = ()

    def scores(self, table: Table) -> np.ndarray:
        return self.model.scores(
            features(texts_of(table, self.inputs), len(self.model.weights) - 2)
        )

    def score(self, text: str) -> float:
        """One text's score (a prompt, or a prompt and an answer, as the router was trained)."""
        return float(self.model.scores(features([text], len(self.model.weights) - 2))[0])

    def threshold_for(self, share: float) -> float:
        """The score at or above which about ``share`` of such traffic goes to the large
        model."""
        if share <= 0:
            return math.inf
        if not self.quantiles:
            raise RouterError("this router has no held-out scores to set a share by")
        q = np.asarray(self.quantiles)
        return float(np.interp(1 - share, np.linspace(0, 1, len(q)), q))

    def save(self, path: Path) -> None:
        body = {
            "format": FORMAT,
            "inputs": self.inputs,
            "dims": len(self.model.weights) - 2,
            "bias": self.model.bias,
            "weights": [round(float(w), 6) for w in self.model.weights],
            "trained_on": sorted(self.trained_on),
            "held_out": self.held_out,
            "quantiles": [round(x, 6) for x in self.quantiles],
        }
        path.write_text(json.dumps(body), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Router:
        try:
            body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            if body.get("format") != FORMAT:
                raise RouterError(f"{path}: not a router file ({FORMAT})")
            weights = np.asarray(body["weights"], dtype=np.float32)
            if len(weights) != int(body["dims"]) + 2 or body["inputs"] not in ("prompt", "answer"):
                raise RouterError(f"{path}: a router file whose weights do not fit")
            return cls(
                body["inputs"],
                Logistic(weights, float(body["bias"])),
                frozenset(body["trained_on"]),
                dict(body["held_out"]),
                tuple(float(x) for x in body.get("quantiles", [])),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, RouterError):
                raise
            raise RouterError(f"{path}: not a readable router file ({exc})") from None


def train(
    table: Table, inputs: Inputs, folds: int = 5, l2: float = 1e-4
) -> tuple[Router, np.ndarray]:
    """A router trained on every row, and every row's held-out score (cross-validated)."""
    x, y = features(texts_of(table, inputs)), labels(table)
    if y.min() == y.max():
        raise RouterError("the strong model never (or always) does better: nothing to learn")
    held_out = cross_validated(x, y, folds, l2=l2)
    model = fit(x, y, l2)
    quantiles = tuple(float(q) for q in np.quantile(held_out, np.linspace(0, 1, 101)))
    seen = frozenset(digest(p) for p in table.prompts)
    return Router(inputs, model, seen, {}, quantiles), held_out
