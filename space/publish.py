"""``culturesim space publish --repo-id ORG/NAME``: upload the Space, self-contained.

A Space runs ``app.py`` from the root of its repository and installs only
``requirements.txt``, so the folder we upload carries everything the app imports from this
checkout: the ``space``, ``simulator`` and ``metrics`` packages, the ``dataset_builder``
package with its curation files (the culture map's polarities) and the committed dataset
(``dataset_builder/dataset``: card and parquet files), under ``culturesim/`` as installed (the
code imports ``culturesim.space``, ``culturesim.simulator``…; ``culturesim`` is a namespace
package, found from the Space's root). The upload itself is
``culturesim.simulator.hub.upload_folder`` (one commit; token from ``HF_TOKEN``; a clear error offline).
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

__all__ = ["HARDWARE", "PACKAGES", "ROOT_FILES", "prepare_space_folder"]

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
SPACE_DIR = Path(__file__).resolve().parent
ROOT_FILES = ("README.md", "requirements.txt", "packages.txt", "app.py")
"""From space/ to the root of the Space: card, pip and apt requirements (fonts), the app."""
PACKAGES = ("space", "simulator", "metrics", "dataset_builder")
"""Packages copied whole (their .py files and data files; no tests, caches or raw sources)."""
NAMESPACE = "culturesim"
"""The folder the packages go into, so they import as they do installed (``culturesim.space``)."""
DATA_SUFFIXES = {".py", ".yaml", ".yml", ".json", ".jsonl", ".md", ".txt", ".parquet", ".html", ".css"}
SKIP_PARTS = {"__pycache__", ".pytest_cache", "tests"}
HARDWARE = {  # --hardware -> (the requirements file uploaded as requirements.txt, suggested_hardware)
    "cpu": ("requirements.txt", "cpu-basic"),
    "gpu": ("requirements-gpu.txt", "t4-small"),
    "zero-gpu": ("requirements-gpu.txt", "zero-a10g"),
}
"""pip cannot tell whether a GPU is present, so the torch build is chosen when publishing:
the CPU build on CPU hardware (the PyPI wheel pulls about 3 GB of CUDA libraries), the CUDA
build from PyPI on a dedicated GPU or ZeroGPU."""


def _copy_package(src: Path, dst: Path) -> int:
    count = 0
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if not path.is_file() or SKIP_PARTS & set(rel.parts) or path.suffix not in DATA_SUFFIXES:
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        count += 1
    return count


def prepare_space_folder(out: str | Path, repo_root: str | Path = REPO_ROOT, hardware: str = "cpu") -> Path:
    """Write the Space's repository contents into ``out`` (emptied first); return it.

    Root: ``README.md`` (Space front matter), ``requirements.txt``, ``packages.txt`` (Debian
    fonts for Chinese, Japanese and Arabic labels), ``app.py``; beside them the packages of
    ``PACKAGES``. ``hardware`` (``HARDWARE``) picks the requirements file and the front
    matter's ``suggested_hardware``. Raises FileNotFoundError when the dataset is not built.
    """
    if hardware not in HARDWARE:
        raise ValueError(f"Unknown hardware {hardware!r}; choose one of {', '.join(HARDWARE)}.")
    requirements, suggested = HARDWARE[hardware]
    root, out = Path(repo_root), Path(out)
    data = root / "dataset_builder" / "dataset" / "data"
    if not any(data.glob("*.parquet")):
        raise FileNotFoundError(f"No dataset in {data}: build it first with `culturesim dataset build`.")
    sources = {name: requirements if name == "requirements.txt" else name for name in ROOT_FILES}
    for name in sources.values():
        if not (root / "space" / name).is_file():
            raise FileNotFoundError(f"{root / 'space' / name} is missing; the Space cannot be published without it.")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name, source in sources.items():
        shutil.copy2(root / "space" / source, out / name)
    card = (out / "README.md").read_text(encoding="utf-8")
    card = re.sub(r"(?m)^suggested_hardware: .*$", f"suggested_hardware: {suggested}", card, count=1)
    (out / "README.md").write_text(card, encoding="utf-8")
    counts = {package: _copy_package(root / package, out / NAMESPACE / package) for package in PACKAGES}
    log.info("prepared Space folder %s: %s", out, ", ".join(f"{k} {v} files" for k, v in counts.items()))
    return out
