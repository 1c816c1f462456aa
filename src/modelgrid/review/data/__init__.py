"""Data shipped with the review engine (package data, no downloads at run time)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sample_terms_path() -> Path:
    return Path(str(resources.files(__name__).joinpath("sample_terms.txt")))


def sample_bank_path() -> Path:
    """ModelGrid's own small TC260-003 question bank (``modelgrid compliance eval``)."""
    return Path(str(resources.files(__name__).joinpath("eval_bank.jsonl")))
