"""Shared test fixtures: where the raw sources and the committed dataset live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see simulator/__init__.py

REPO = Path(__file__).resolve().parent.parent
SOURCES = REPO.parent / "shared" / "sources"
DATASET = REPO / "dataset_builder" / "dataset"


@pytest.fixture(scope="session")
def sources() -> Path:
    if not SOURCES.is_dir():
        raise RuntimeError(f"The raw sources must be at {SOURCES} (../shared/sources beside the checkout).")
    return SOURCES


@pytest.fixture(scope="session")
def dataset_dir() -> Path:
    return DATASET
