"""Hardware and limits: which models and job sizes this Space accepts.

Why a module of its own: a CPU Space, a dedicated GPU and ZeroGPU differ only here; every
refusal names the cap and the fix before a model is loaded.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any


from culturesim.space.common import MODEL_KINDS, SELECT_BY
from culturesim.space.spec import JobSpec
from culturesim.simulator.participants import canonical_plan

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# Hardware and limits
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hardware:
    """Where the Space runs: decides which models and job sizes it accepts."""

    gpu_name: str | None = None
    gpu_memory_gb: float = 0.0
    cpu_count: int = 1
    zero_gpu: bool = False
    """A ZeroGPU Space: the GPU is lent per job (``culturesim.space.device``), for a few minutes at most."""
    compute_capability: tuple[int, int] | None = None
    """The GPU's CUDA compute capability; below 8.0 (T4, V100) there is no bfloat16."""

    @property
    def has_gpu(self) -> bool:
        return self.gpu_name is not None

    @property
    def where(self) -> str:
        """What the model runs on, in a few words (the model choice's label)."""
        if self.zero_gpu:
            return "ZeroGPU"
        return f"this {self.gpu_name}" if self.has_gpu else "this CPU"

    def describe(self) -> str:
        if self.zero_gpu:
            return f"ZeroGPU ({self.gpu_name}, {self.gpu_memory_gb:.0f} GB, lent per job)"
        if self.has_gpu:
            return f"GPU {self.gpu_name} ({self.gpu_memory_gb:.0f} GB)"
        return f"CPU only ({self.cpu_count} cores)"


def detect_hardware() -> Hardware:
    """The GPU torch sees (if any) and the CPU count. On ZeroGPU, what ``spaces`` says the
    lent GPU is (the main process has no CUDA; ``spaces`` answers torch's device queries)."""
    from culturesim.space import device  # imports spaces (if installed) before torch

    cpus = os.cpu_count() or 1
    if device.on_zero_gpu() and device.spaces is not None:
        from spaces.config import Config

        capability = (Config.zerogpu_cuda_capability_major, Config.zerogpu_cuda_capability_minor)
        return Hardware(Config.zerogpu_cuda_device_name, Config.zerogpu_cuda_total_memory / 1e9, cpus,
                        zero_gpu=True, compute_capability=capability)
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            return Hardware(props.name, props.total_memory / 1e9, cpus,
                            compute_capability=(props.major, props.minor))
    except Exception:  # noqa: BLE001 - a broken CUDA install is CPU-only hardware
        log.debug("no usable GPU", exc_info=True)
    return Hardware(None, 0.0, cpus)


def torch_build_warning(hardware: Hardware) -> str | None:
    """Why the model runs on the CPU although this machine has an NVIDIA GPU (a CPU build of
    torch, e.g. a Space published with ``--hardware cpu`` and then switched to a GPU), or None."""
    if hardware.has_gpu or hardware.zero_gpu:
        return None
    gpu_present = Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None
    try:
        import torch

        cpu_build = torch.version.cuda is None
    except Exception:  # noqa: BLE001 - no torch at all is reported when a model loads
        return None
    if gpu_present and cpu_build:
        return ("this machine has an NVIDIA GPU but torch is a CPU build, so models run on the CPU; republish "
                "with `culturesim space publish --hardware gpu` (requirements-gpu.txt)")
    return None


@dataclass(frozen=True)
class SpaceLimits:
    """Caps that keep one job from taking the Space down; each refusal names the cap."""

    max_responses: int = 200
    """Questions x participants per job."""
    max_questions: int = 100
    max_participants: int = 50
    max_new_tokens: int = 512
    job_timeout_s: float = 600.0
    """A job still running after this many seconds is stopped and reported as timed out."""
    queue_max_size: int = 16
    """Jobs waiting in the queue beyond this are turned away by Gradio."""
    concurrency_limit: int = 1
    """Generation jobs running at once (they share one model and the same cores)."""
    max_model_params: float = 1.0e9
    """The biggest Hub model accepted (parameters); on GPU derived from its memory."""

    @classmethod
    def for_hardware(cls, hardware: Hardware, **overrides: Any) -> "SpaceLimits":
        """CPU: small jobs, models up to 1B parameters. GPU: bigger jobs, models that fit
        in its memory (bf16 up to 10B, 4-bit loading above, as the transformers backend does)."""
        if hardware.has_gpu:
            # bf16: 2 bytes/param; 4-bit: ~0.6 bytes/param; keep 25% for activations and KV cache.
            usable = 0.75 * hardware.gpu_memory_gb * 1e9
            max_params = max(usable / 2.0, min(usable / 0.6, 80e9)) if usable / 2.0 >= 10e9 else usable / 2.0
            base = cls(max_responses=4000, max_questions=1000, max_participants=50, max_new_tokens=512,
                       job_timeout_s=1800.0, concurrency_limit=1, max_model_params=max_params)
            if hardware.zero_gpu:  # a lease lasts minutes: smaller jobs, the lease bounds the generation
                from culturesim.space.device import ZERO_GPU_MAX_S  # device imports spaces before torch: see above

                base = replace(base, max_responses=1000, job_timeout_s=float(ZERO_GPU_MAX_S) + 120.0)
        else:
            base = cls()
        return replace(base, **overrides) if overrides else base


SUGGESTED_MODELS = (
    ("HuggingFaceTB/SmolLM2-360M-Instruct", 0.36e9),
    ("Qwen/Qwen2.5-0.5B-Instruct", 0.49e9),
    ("Qwen/Qwen2.5-1.5B-Instruct", 1.54e9),
    ("HuggingFaceTB/SmolLM2-1.7B-Instruct", 1.71e9),
    ("Qwen/Qwen2.5-3B-Instruct", 3.09e9),
    ("Qwen/Qwen2.5-7B-Instruct", 7.62e9),
    ("meta-llama/Llama-3.1-8B-Instruct", 8.03e9),
    ("Qwen/Qwen2.5-14B-Instruct", 14.8e9),
    ("Qwen/Qwen2.5-32B-Instruct", 32.8e9),
)
"""Open instruction-tuned Hub models (ungated except Llama) with their parameter counts."""


def suggested_models(limits: "SpaceLimits") -> list[str]:
    """The suggested Hub models this hardware holds (``limits.max_model_params``), smallest first."""
    return [model for model, params in SUGGESTED_MODELS if params <= limits.max_model_params]


_SIZE = re.compile(r"(?<![A-Za-z0-9.])(?:(\d+)x)?(\d+(?:\.\d+)?)\s*([bBmM])(?![A-Za-z])")


def model_parameter_count(model_id: str, lookup_hub: bool = True) -> tuple[float | None, str]:
    """(parameters, how we know) for a Hub id or local path; (None, why not) when unknown.

    Local folders: the safetensors headers (exact). Hub ids: the size in the name (``-0.5B``,
    ``-135M``, ``8x7B``), else the Hub's safetensors metadata (needs the network).
    """
    path = Path(model_id).expanduser()
    if path.exists():
        total = 0
        for file in list(path.glob("*.safetensors")) if path.is_dir() else [path]:
            if file.suffix != ".safetensors":
                continue
            with open(file, "rb") as fh:
                header_len = int.from_bytes(fh.read(8), "little")
                header = json.loads(fh.read(header_len))
            for name, info in header.items():
                if name != "__metadata__":
                    total += math.prod(info["shape"])
        if total:
            return float(total), "safetensors headers"
        return None, f"no .safetensors weights in {path}"
    name = model_id.rsplit("/", 1)[-1]
    sizes = []
    for experts, number, unit in _SIZE.findall(name):
        value = float(number) * (1e9 if unit.lower() == "b" else 1e6)
        sizes.append(value * (int(experts) if experts else 1))
    if sizes:
        return max(sizes), f"the size in the name {name!r}"
    if not lookup_hub:
        return None, "no size in the name"
    try:
        from huggingface_hub import HfApi

        meta = HfApi().get_safetensors_metadata(model_id)
        return float(sum(meta.parameter_count.values())), "the Hub's safetensors metadata"
    except Exception as exc:  # noqa: BLE001 - offline, gated, no safetensors: size unknown
        return None, f"the Hub lookup failed ({type(exc).__name__})"


def check_model_size(model_id: str, hardware: Hardware, limits: SpaceLimits, lookup_hub: bool = True) -> float:
    """Refuse a model too big for this hardware (ValueError naming size, cap and fix)."""
    if not model_id or not model_id.strip():
        raise ValueError("Give a Hub model id (e.g. HuggingFaceTB/SmolLM2-360M-Instruct) or a local path.")
    params, how = model_parameter_count(model_id.strip(), lookup_hub=lookup_hub)
    where = hardware.describe()
    if params is None:
        if hardware.has_gpu:
            return float("nan")
        raise ValueError(
            f"Cannot tell how big {model_id!r} is ({how}), so it is refused on this {where} hardware, which "
            f"runs models up to {limits.max_model_params / 1e9:.1f}B parameters. Use an id that states its size "
            "(e.g. Qwen/Qwen2.5-0.5B-Instruct), the embedded SmolLM2, or a GPU Space."
        )
    if params > limits.max_model_params:
        raise ValueError(
            f"{model_id!r} has about {params / 1e9:.2f}B parameters ({how}); this {where} Space runs models up to "
            f"{limits.max_model_params / 1e9:.1f}B. Pick a smaller model, the embedded SmolLM2 or Claude, or run "
            "the Space on GPU hardware (see README: suggested_hardware)."
        )
    return params


def check_job(spec: JobSpec, limits: SpaceLimits) -> None:
    """Refuse a job outside the Space's caps, naming the cap and how to get under it."""
    if spec.model_kind not in MODEL_KINDS:
        raise ValueError(f"Unknown model choice {spec.model_kind!r}; choose one of {', '.join(MODEL_KINDS)}.")
    for name, value, cap in (
        ("questions", spec.questions, limits.max_questions),
        ("participants", spec.participants, limits.max_participants),
        ("max_new_tokens", spec.max_new_tokens, limits.max_new_tokens),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be a whole number >= 1.")
        if value > cap:
            raise ValueError(f"{name}={value} is over this Space's cap of {cap}; lower it.")
    cells = spec.questions * spec.participants
    if cells > limits.max_responses:
        raise ValueError(
            f"{spec.questions} questions x {spec.participants} participants = {cells} responses is over this Space's "
            f"cap of {limits.max_responses} per job; lower either, or run `culturesim simulate` on your own hardware."
        )
    if spec.select_by not in SELECT_BY:
        raise ValueError(f"Unknown selection {spec.select_by!r}; choose one of {', '.join(SELECT_BY)}.")

    canonical_plan(spec.plan)
