"""Make the optional ``harness`` extra (lm-eval, inspect-ai) importable for the harness tests.

Why the tests install it rather than ``[dev]``: the two harnesses pull in dozens of packages
(and pin some, e.g. inspect-ai caps fsspec) that nothing else in culturesim needs, so the lead's
rule keeps heavy optional extras out of ``[dev]``. A test that skipped when they are missing
would never run in CI; instead the harness tests call ``ensure_harness()``, which installs the
extra's requirements, read from pyproject.toml (one source of truth), with this interpreter's pip
the first time they are missing.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODULES = ("lm_eval", "inspect_ai")


def harness_requirements() -> list[str]:
    """The ``harness`` extra of pyproject.toml, e.g. ``["lm-eval[hf]>=0.4.9", "inspect-ai>=..."]``."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return list(project["optional-dependencies"]["harness"])


def ensure_harness() -> None:
    """Install the harness extra unless both harnesses are already importable."""
    if all(importlib.util.find_spec(m) is not None for m in MODULES):
        return
    command = [sys.executable, "-m", "pip", "install", "--quiet", *harness_requirements()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    importlib.invalidate_caches()
    missing = [m for m in MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise RuntimeError(f"{missing} still not importable after {' '.join(command)}")
