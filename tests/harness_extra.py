"""A Python with the optional ``harness`` extra (lm-eval, inspect-ai) for the harness tests.

Why the tests install it rather than ``[dev]``: the two harnesses pull in dozens of packages
(and pin some, e.g. inspect-ai caps fsspec) that nothing else in culturesim needs, so heavy
optional extras stay out of ``[dev]``. A test that skipped when they are missing would never
run in CI. Why a separate virtual environment: installing them into the test process's own
environment mid-run could change the versions every later test runs with. So
``harness_python()`` makes (once, under a lock, in a cache folder keyed by the requirements and
this interpreter) a venv that sees the test environment's packages (torch, gguf, transformers and
culturesim itself, editable install included), installs the extra's requirements there (read from
pyproject.toml, one source of truth), and returns its interpreter; the harness tests run
``lm_eval`` and ``inspect`` with it as real subprocesses. ``CULTURESIM_HARNESS_VENV`` names
another folder.

Why not ``venv --system-site-packages``: that exposes the *base* interpreter's packages, not those
of the virtual environment the tests run in, so it only worked where everything had been installed
into the system Python. Instead a ``.pth`` file in the harness venv adds the test environment's site
directories after its own (``site.addsitedir``, so their ``.pth`` files, culturesim's editable
finder among them, are processed too); what the harness installs comes first.

Why ``--without-pip``: seeding pip into the new venv (ensurepip) cost about 3 s of CPU for a copy of
the pip the test environment already has; the test environment's pip installs into the harness venv
instead (``pip --python``), still a separate environment with its own site-packages.
"""

from __future__ import annotations

import hashlib
import os
import site
import subprocess
import sys
import tomllib
from pathlib import Path

from filelock import FileLock

REPO = Path(__file__).resolve().parent.parent
MODULES = ("lm_eval", "inspect_ai")


def harness_requirements() -> list[str]:
    """The ``harness`` extra of pyproject.toml, e.g. ``["lm-eval[hf]>=0.4.9", "inspect-ai>=..."]``."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return list(project["optional-dependencies"]["harness"])


def harness_venv(requirements: list[str]) -> Path:
    key = hashlib.sha256("\n".join([*requirements, sys.prefix, sys.version, "pth"]).encode()).hexdigest()[:12]
    default = Path.home() / ".cache" / "culturesim" / f"harness-venv-{key}"
    return Path(os.environ.get("CULTURESIM_HARNESS_VENV") or default)


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def _inherit_test_environment(python: Path) -> None:
    """Make the test environment's packages visible to ``python`` (the harness venv), after its own."""
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    ours = [p for p in site.getsitepackages() if Path(p).is_dir()]
    lines = [f"import site; site.addsitedir({p!r})" for p in ours]
    (Path(purelib) / "culturesim-test-environment.pth").write_text("\n".join(lines) + "\n", encoding="utf-8")


def harness_python() -> str:
    """The interpreter of the harness venv, made and filled on first use."""
    requirements = harness_requirements()
    root = harness_venv(requirements)
    python = root / "bin" / "python"
    marker = root / ".harness-installed"
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock"):
        if not marker.exists():
            if not python.exists():
                _run([sys.executable, "-m", "venv", "--without-pip", str(root)])
            _inherit_test_environment(python)
            _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", *requirements])
            _run([str(python), "-c", "import " + ", ".join(MODULES)])
            marker.write_text("\n".join(requirements) + "\n", encoding="utf-8")
    return str(python)
