"""A backend's constructor arguments from the command line (``simulate``, ``invariance``,
``dataset expand`` share the model options).

Why here: an option the chosen backend does not take (``--base-url`` for transformers) or one
it needs (``--model`` for openai) is refused in terms of the flag typed, before anything loads.
"""

from __future__ import annotations

import argparse
import inspect
from typing import Any

from culturesim.simulator.backends import backend_class

__all__ = ["backend_kwargs"]

_FLAG_OF = {"timeout_s": "--request-timeout", "n_threads": "--threads"}


def backend_kwargs(backend_name: str, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """The backend's constructor arguments from the command line, checked against its signature."""
    wanted = {
        "model": args.model,
        "base_url": args.base_url,
        "batch_size": args.batch_size,
        "concurrency": args.concurrency,
        "device": args.device,
        "dtype": args.dtype,
        "timeout_s": getattr(args, "request_timeout", None),
        "max_attempts": getattr(args, "max_attempts", None),
        "n_threads": getattr(args, "threads", None),
    }
    given = {k: v for k, v in wanted.items() if v is not None}
    try:
        params = inspect.signature(backend_class(backend_name).__init__).parameters
    except (ImportError, AttributeError, ValueError, TypeError):
        return given
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    rejected = [k for k in given if k not in params and not accepts_any]
    if rejected:
        flags = ", ".join(_FLAG_OF.get(k, "--" + k.replace("_", "-")) for k in rejected)
        raise ValueError(f"The {backend_name} backend does not take {flags}; drop it or choose another --backend")
    required = [name for name, p in params.items()
                if name != "self" and p.default is inspect.Parameter.empty
                and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
                and name not in given]
    if required:
        flags = ", ".join(_FLAG_OF.get(k, "--" + k.replace("_", "-")) for k in required)
        example = " (the model name the server serves, e.g. --model meta-llama/Llama-3.1-8B-Instruct)" \
            if required == ["model"] else ""
        raise ValueError(f"The {backend_name} backend needs {flags}{example}")
    if "seed" in params:
        given["seed"] = seed
    return given
