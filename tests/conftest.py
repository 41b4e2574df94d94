"""Shared test fixtures: where the raw sources and the committed dataset live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from katan import death_notes

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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failing test also reports every server it relied on that has died (llm-katan, llama.cpp,
    the Space): exit status and last log lines, the cause that "connection refused" hides."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for note in death_notes():
            report.sections.append(("a server the tests started has died", note))
