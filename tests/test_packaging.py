"""One import namespace: the installed distribution provides ``culturesim.*`` and nothing generic.

The top-level folders (``simulator``, ``metrics``, ``space``, ``dataset_builder``) share their
names with other distributions on the registry; installed, they live under ``culturesim.``.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FOLDERS = ("dataset_builder", "metrics", "simulator", "space")


def test_every_folder_is_a_listed_package() -> None:
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert setuptools["package-dir"] == {f"culturesim.{f}": f for f in FOLDERS}
    folders = {
        "culturesim." + ".".join(d.relative_to(REPO).parts)
        for top in FOLDERS
        for d in [REPO / top, *(REPO / top).rglob("*")]
        if d.is_dir() and d.name != "__pycache__"
    }
    assert set(setuptools["packages"]) == folders


def test_installed_names_are_under_culturesim_only(tmp_path: Path) -> None:
    """Run from outside the checkout (the current folder is on ``sys.path``), as a user would."""
    code = (
        "import importlib.util as u\n"
        f"print([n for n in {FOLDERS!r} if u.find_spec(n) is not None])\n"
        "from culturesim.metrics.cultural_alignment import compute_alignment\n"
        "import culturesim.simulator.runner, culturesim.space.app, culturesim.dataset_builder.build\n"
        "print(compute_alignment.__module__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    generic, module = done.stdout.split("\n")[:2]
    assert generic == "[]"
    assert module.startswith("culturesim.metrics.cultural_alignment")
