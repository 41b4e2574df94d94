"""A lazy registry of backends: each is imported only when chosen.

A missing SDK fails with the exact ``pip install`` line; an unknown name lists the choices.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from culturesim.simulator.backends.base import Backend, RetryPolicy

# name -> (module, class, pip requirement that provides its SDK)
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "transformers": ("culturesim.simulator.backends.transformers_backend", "TransformersBackend", "transformers accelerate gguf"),
    "anthropic": ("culturesim.simulator.backends.anthropic_backend", "AnthropicBackend", "anthropic"),
    "openai": ("culturesim.simulator.backends.openai_backend", "OpenAIBackend", "openai"),
    "llamacpp": ("culturesim.simulator.backends.llamacpp_backend", "LlamaCppBackend", "llama-cpp-python"),
}


def available_backends() -> list[str]:
    return sorted(_REGISTRY)


def backend_class(name: str) -> type[Backend]:
    """The class of the backend called ``name``, its module imported (e.g. to read the
    constructor's signature before creating one)."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Unknown backend {name!r}.{hint} Available: {', '.join(available_backends())}.")
    module_name, class_name, requirement = _REGISTRY[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "culturesim":
            raise  # our own code is broken: not a missing package
        raise ModuleNotFoundError(
            f"The {name!r} backend needs a package that is not installed ({exc.name}). "
            f"Install it with: pip install {requirement}"
        ) from exc
    return getattr(module, class_name)


def get_backend(name: str, **kwargs: Any) -> Backend:
    """Create the backend called ``name`` with its keyword arguments."""
    return backend_class(name)(**kwargs)


__all__ = ["Backend", "RetryPolicy", "available_backends", "backend_class", "get_backend"]
