"""Data shipped with the review engine (package data, no downloads at run time)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sample_terms_path() -> Path:
    return Path(str(resources.files(__name__).joinpath("sample_terms.txt")))
