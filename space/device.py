"""The GPU-bound part of a job: one function that ZeroGPU may run on a borrowed GPU.

Why a module of its own: on a ZeroGPU Space (``SPACES_ZERO_GPU=true``) a GPU exists only
inside a function decorated with ``@spaces.GPU``, which the ``spaces`` package runs in a
forked worker process that holds the GPU for at most ``duration`` seconds. Off ZeroGPU the
decorator returns the function itself (``spaces.zero.decorator._GPU``: ``if not
Config.zero_gpu: return task``), so one ``app.py`` serves CPU, dedicated-GPU and ZeroGPU
hardware. This module is imported before torch (``space/app.py``): ``spaces`` must patch
torch before anything initialises CUDA.

What crosses into the decorated call must pickle (ZeroGPU sends the arguments to its worker
and the return value back), and a worker is a separate process: so the call takes plain
values, writes its rows to the run folder (the page reads them from ``responses.jsonl``) and
stops when a stop file appears there (``STOP_FILE``), not through a ``threading.Event``.
Models are loaded at start-up, outside the call (``culturesim.space.models.local_backend``); a model
first asked for on ZeroGPU loads inside it (the main process cannot touch CUDA there).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

try:  # before torch: on ZeroGPU, spaces patches torch's CUDA entry points at import
    import spaces
except ImportError:  # a local install without the [space] extra: no ZeroGPU, nothing to decorate
    spaces = None

STOP_FILE = "STOP"
"""Created in a run folder to stop its job before the next batch (cancel or timeout)."""
ZERO_GPU_MAX_S = 240
"""The longest GPU lease a job asks ZeroGPU for (its documented maximum is a few minutes)."""

__all__ = ["STOP_FILE", "ZERO_GPU_MAX_S", "gpu_seconds", "on_zero_gpu", "simulate_local", "spaces"]


def on_zero_gpu() -> bool:
    """Whether this process runs on a ZeroGPU Space (the variable the ``spaces`` package reads)."""
    return os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "t", "true")


def gpu_seconds(**kwargs: Any) -> int:
    """The lease ZeroGPU is asked for: the job's remaining time, capped (``@spaces.GPU``'s
    dynamic ``duration`` gets the call's arguments)."""
    return int(max(10, min(ZERO_GPU_MAX_S, kwargs.get("lease_s") or ZERO_GPU_MAX_S)))


def _gpu(function: Any) -> Any:
    if spaces is None:
        return function
    return spaces.GPU(duration=gpu_seconds)(function)


@_gpu
def simulate_local(*, run_dir: str, model_id: str, questions: Sequence[Any], options: dict[str, Any],
                   deadline: float, timeout_s: float, lease_s: float) -> Any:
    """Run ``culturesim.simulator.runner.simulate`` with the local model into ``run_dir`` (GPU-bound).

    ``deadline`` is wall-clock time (``time.time()``, the same in a forked worker); the
    guarded backend stops before the next batch once it passes or ``run_dir/STOP`` exists.
    Returns the runner's ``RunSummary``. ``lease_s`` only sizes the ZeroGPU lease.
    """
    # imported here, not at the top: this module must import ``spaces`` before anything that may load torch
    from culturesim.simulator.runner import simulate
    from culturesim.space.models import GuardedBackend, local_backend

    backend = GuardedBackend(local_backend(model_id), deadline, timeout_s, Path(run_dir) / STOP_FILE, None)
    return simulate(run_dir, list(questions), backend, **options)
