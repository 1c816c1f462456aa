"""Routing policies that need no training (pure): each scores prompts, the higher the likelier
the strong model is needed. Baselines for the trained routers, and for replaying at once."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def _random(prompts: list[str], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(len(prompts))


def _length(prompts: list[str], seed: int) -> np.ndarray:
    """Longer prompts ask more."""
    return np.array([len(p.split()) for p in prompts], dtype=np.float64)


def _numbers(prompts: list[str], seed: int) -> np.ndarray:
    """More quantities to combine, more steps to get wrong (word problems)."""
    return np.array([len(_NUMBER.findall(p)) for p in prompts], dtype=np.float64)


POLICIES: dict[str, Callable[[list[str], int], np.ndarray]] = {
    "random": _random,
    "length": _length,
    "numbers": _numbers,
}


def scores_of(policy: str, prompts: list[str], seed: int = 0) -> np.ndarray:
    if policy not in POLICIES:
        raise KeyError(policy)
    # A tiny, seeded jitter breaks ties between equal scores, so that every decile is a
    # threshold of its own, as with a router's continuous scores.
    jitter = np.random.default_rng(seed + 1).random(len(prompts)) * 1e-6
    return POLICIES[policy](prompts, seed) + jitter
