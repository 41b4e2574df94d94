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


@pytest.fixture(scope="session")
def embedded_model():
    """The embedded SmolLM2 loaded once for the whole session: reading its GGUF file costs about 20 s
    of CPU per load, and many modules generate with it. Take it through ``embedded_backend``."""
    from culturesim.simulator.backends import get_backend

    backend = get_backend("transformers", batch_size=16)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def embedded_backend(embedded_model):
    """A factory: ``embedded_backend(seed=0, batch_size=16)`` is what ``get_backend("transformers",
    seed=0, batch_size=16)`` builds, sharing the session's loaded weights and tokenizer (seed and
    batch size are plain attributes, read at each ``generate``). Its ``close()`` drops only its own
    reference to the model."""
    import copy

    def make(seed: int | None = None, batch_size: int = 16):
        backend = copy.copy(embedded_model)
        backend.seed = seed
        backend.batch_size = backend.concurrency = batch_size
        return backend

    return make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failing test also reports every server it relied on that has died (llm-katan, llama.cpp,
    the Space): exit status and last log lines, the cause that "connection refused" hides."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for note in death_notes():
            report.sections.append(("a server the tests started has died", note))
