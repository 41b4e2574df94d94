"""Local causal language models through transformers, batched across simulated participants.

The DEF method gives every simulated participant its own generation config (temperature, top_p,
num_beams, do_sample). Generating one participant at a time leaves a CPU or GPU mostly idle, and
transformers' ``generate`` takes one num_beams, temperature and top_p per call. So generation
runs through ``culturesim.simulator.backends.decoding.decode``: one loop in which every participant of a
chunk (greedy, sampling, beam search and beam sampling alike) shares each forward pass, and
temperature, top_p, min/max_new_tokens and the beam count are per request.

Chunks: ``batch_size`` bounds the requests (participants) in one chunk (the same knob is
``concurrency``: requests in flight for the remote backends); a request with ``num_beams=b``
occupies ``b`` decoding rows. On CPU a memory budget bounds each chunk's KV cache plus prefill
attention scores, so long memory-plan prompts and 512-token answers cannot push a run past
2 GB (``plan_chunks``). On CUDA a chunk that runs out of memory is split in halves and retried.

Reproducibility: with a seed, torch is seeded per chunk from (seed, the chunk's request keys and
per-request seeds), so generating the same batch again gives the same text; the runner relies on
this to resume a run. Note that torch's global RNG is what gets seeded, and that outputs depend
on which requests share a chunk.

Quantisation: the choice (none, bitsandbytes NF4, or the checkpoint's own GPTQ/other method) is a
pure function, ``choose_quantization``, so it is tested without a GPU; see its docstring.
"""

from __future__ import annotations

import gc
import hashlib
import importlib.metadata
import importlib.util
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from culturesim.simulator.backends.base import Backend, in_request_order
from culturesim.simulator.backends.decoding import DecodeRequest, decode
from culturesim.simulator.backends.model_source import resolve_model_source
from culturesim.simulator.embedded import (EMBEDDED_GGUF_FILE, EMBEDDED_HF_DIR_ENV, EMBEDDED_MODEL,
                                           default_embedded_folder, embedded_model_folder)
from culturesim.simulator.types import GenerationConfig, GenerationRequest, GenerationResult

log = logging.getLogger(__name__)

SUPPORTED_PARAMS = frozenset(
    {"max_new_tokens", "min_new_tokens", "do_sample", "temperature", "top_p", "num_beams", "seed"}
)
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
FOUR_BIT_AUTO_THRESHOLD = 10e9
"""Models with more parameters than this load in 4-bit on GPU unless ``load_in_4bit=False``."""

# What transformers 5 checks before loading (quantizers/quantizer_bnb_4bit.py, quantizer_gptq.py).
BITSANDBYTES_REQUIREMENT = ("bitsandbytes", "0.46.1")
GPTQ_REQUIREMENTS = (("gptqmodel", "1.4.3"), ("optimum", "1.24.0"))


# --------------------------------------------------------------------------- loading decisions


@dataclass(frozen=True)
class LoadPlan:
    """How a model will be loaded; every field is recorded in ``describe()``."""

    device: str
    dtype: str
    quantization: str
    """``none``, ``bnb-nf4`` (bitsandbytes 4-bit NF4, bfloat16 compute; float16 on a T4) or the checkpoint's own
    ``quant_method`` (``gptq``, ``awq``, ...) for pre-quantised checkpoints."""


def resolve_device(device: str | None) -> str:
    """``None`` -> ``cuda`` when available, else ``cpu``; an explicit CUDA device must exist."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available here; use device='cpu' or leave it unset.")
    return device


def choose_quantization(
    *,
    device: str,
    load_in_4bit: bool | None,
    num_parameters: int | None,
    checkpoint_quantization: str | None,
    gguf: bool,
) -> str:
    """Pick the quantisation path for a model.

    - A checkpoint that is already quantised (``quantization_config`` in its config, e.g. GPTQ)
      loads through its own method; ``load_in_4bit=False`` cannot undo that and is an error.
    - A GGUF file is de-quantised by transformers on load; re-quantising it to 4-bit is refused.
    - ``load_in_4bit=True``: bitsandbytes NF4, which needs a CUDA device.
    - ``load_in_4bit=None`` (auto): NF4 on CUDA for models above ``FOUR_BIT_AUTO_THRESHOLD``
      parameters, otherwise full precision. On CPU, never.
    - ``load_in_4bit=False``: full precision.
    """
    if checkpoint_quantization:
        if load_in_4bit is False:
            raise ValueError(
                f"The checkpoint is already quantised ({checkpoint_quantization}) and cannot be loaded unquantised; "
                "leave load_in_4bit unset (None) or pass an unquantised checkpoint."
            )
        return checkpoint_quantization
    if gguf:
        if load_in_4bit:
            raise ValueError(
                "load_in_4bit=True with a GGUF file: transformers de-quantises GGUF weights on load and re-quantising "
                "them is not supported; use the original safetensors checkpoint for 4-bit loading."
            )
        return "none"
    on_cuda = device.startswith("cuda")
    if load_in_4bit:
        if not on_cuda:
            raise ValueError(
                f"load_in_4bit=True needs a CUDA device (bitsandbytes), but device={device!r}; "
                "use device='cuda' on a GPU machine or leave load_in_4bit unset."
            )
        return "bnb-nf4"
    if load_in_4bit is None and on_cuda and num_parameters is not None and num_parameters > FOUR_BIT_AUTO_THRESHOLD:
        return "bnb-nf4"
    return "none"


BF16_MIN_CAPABILITY = (8, 0)
"""bfloat16 needs compute capability 8.0 (Ampere); a T4 (7.5) or V100 (7.0) has none."""


def choose_dtype(dtype: str | None, device: str, quantization: str,
                 compute_capability: tuple[int, int] | None = None) -> str:
    """``None`` -> float32 on CPU, float16 for GPTQ (its kernels' dtype) and on GPUs without
    bfloat16 (compute capability below 8.0: T4, V100), bfloat16 otherwise.

    ``compute_capability`` is the CUDA device's; None on a CUDA device means "unknown", taken as
    bfloat16-capable. An explicit ``bfloat16`` on a GPU without it is refused.
    """
    no_bf16 = device != "cpu" and compute_capability is not None and tuple(compute_capability) < BF16_MIN_CAPABILITY
    if dtype is not None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype={dtype!r} is not supported; choose one of {', '.join(DTYPES)} or leave it unset.")
        if dtype == "bfloat16" and no_bf16:
            raise ValueError(
                f"dtype='bfloat16' on a GPU of compute capability {compute_capability[0]}.{compute_capability[1]}, "
                "which has no bfloat16 (it needs 8.0, Ampere or newer); use float16 or leave dtype unset."
            )
        return dtype
    if device == "cpu":
        return "float32"
    if quantization == "gptq" or no_bf16:
        return "float16"
    return "bfloat16"


def cuda_capability(device: str) -> tuple[int, int] | None:
    """The compute capability of a CUDA ``device`` (None for other devices)."""
    if not device.startswith("cuda"):
        return None
    return tuple(torch.cuda.get_device_capability(device if ":" in device else None))  # type: ignore[return-value]


def plan_load(
    *,
    device: str | None,
    dtype: str | None,
    load_in_4bit: bool | None,
    num_parameters: int | None,
    checkpoint_quantization: str | None,
    gguf: bool,
) -> LoadPlan:
    resolved = resolve_device(device)
    quantization = choose_quantization(
        device=resolved,
        load_in_4bit=load_in_4bit,
        num_parameters=num_parameters,
        checkpoint_quantization=checkpoint_quantization,
        gguf=gguf,
    )
    dtype = choose_dtype(dtype, resolved, quantization, cuda_capability(resolved))
    return LoadPlan(device=resolved, dtype=dtype, quantization=quantization)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def missing_requirements(requirements: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The ``(package, minimum version)`` pairs that are not installed, or installed too old."""
    missing = []
    for package, minimum in requirements:
        try:
            found = importlib.util.find_spec(package) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append((package, minimum))
            continue
        try:
            installed = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            installed = "0"
        if _version_tuple(installed) < _version_tuple(minimum):
            missing.append((package, minimum))
    return missing


def check_quantization_packages(quantization: str) -> None:
    """Raise ModuleNotFoundError with the exact ``pip install`` line when a quantisation package is missing."""
    if quantization == "bnb-nf4":
        needed, what = (BITSANDBYTES_REQUIREMENT,), "4-bit loading (bitsandbytes NF4)"
    elif quantization == "gptq":
        needed, what = GPTQ_REQUIREMENTS, "GPTQ checkpoints (transformers 5 loads them through gptqmodel and optimum)"
    else:
        return
    missing = missing_requirements(needed)
    if missing:
        line = "pip install " + " ".join(f'"{p}>={v}"' for p, v in missing)
        raise ModuleNotFoundError(
            f"{what} needs {', '.join(p for p, _ in missing)} (not installed or too old). Install it with: {line}"
        )


def count_parameters(config: Any) -> int | None:
    """Parameters of the model ``config`` describes, counted on the meta device (no memory, no weights).

    Falls back to the dense-decoder estimate ``L*(4h^2 + 3h*i) + 2*V*h`` when the architecture
    cannot be built from its config; None when even that is impossible.
    """
    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        return int(sum(p.numel() for p in model.parameters()))
    except Exception as exc:  # noqa: BLE001 - any failure means "estimate instead"
        log.debug("meta-device parameter count failed (%s); estimating from the config", exc)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    try:
        h, layers, vocab = text.hidden_size, text.num_hidden_layers, text.vocab_size
        inter = getattr(text, "intermediate_size", None) or 4 * h
        return int(layers * (4 * h * h + 3 * h * inter) + 2 * vocab * h)
    except AttributeError:
        return None


def checkpoint_quantization_method(config: Any) -> str | None:
    qc = getattr(config, "quantization_config", None)
    if qc is None:
        return None
    method = qc.get("quant_method") if isinstance(qc, dict) else getattr(qc, "quant_method", None)
    method = getattr(method, "value", method)
    return str(method) if method else "unknown"


# --------------------------------------------------------------------------- prompts


def render_chat(tokenizer: Any, messages: Sequence[dict[str, str]]) -> tuple[str, bool]:
    """The prompt text for a conversation, ready for the assistant's reply.

    Returns ``(text, add_special_tokens)``: with a chat template the template already holds the
    special tokens (so tokenise with ``add_special_tokens=False``); models without one (base
    models) get a plain ``role: content`` transcript ending in ``assistant:`` and their BOS token.
    """
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
        return text, False
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n\n".join(lines) + "\n\nassistant:", True


# --------------------------------------------------------------------------- chunk planning

CPU_MEMORY_BUDGET_MB = 600.0
"""Default bound on one chunk's estimated KV cache plus prefill attention scores on CPU. The
embedded model is about 1 GB resident once loaded and the runner adds a few hundred MB, so this
keeps a whole default run under 2 GB even with the memory plan's long prompts (measured: a
README demo run peaked at 1.85 GB with a 768 MB budget, and chunks use about 80% of their
estimate). On CUDA the default is no bound: a chunk that runs out of memory is split in halves
and retried."""


@dataclass(frozen=True)
class MemoryModel:
    """Bytes one decoding row needs, from the model's shape.

    ``kv_bytes_per_token``: the KV cache (layers x 2 x kv_heads x head_dim x element size).
    ``score_bytes_per_token_pair``: one layer's attention during prefill: transformers' SDPA path
    on CPU materialises the float32 scores and their softmax (heads x 2 x 4 bytes per query-key
    pair) and a float mask (4 bytes) when a padding mask is given. Calibrated on the embedded
    model: 4 rows of 1,743-token prompts measured 1.05 GB above the loaded model's resident size.
    """

    kv_bytes_per_token: int
    score_bytes_per_token_pair: int

    @classmethod
    def from_config(cls, config: Any, dtype: str) -> "MemoryModel | None":
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        try:
            layers = int(text.num_hidden_layers)
            heads = int(text.num_attention_heads)
            kv_heads = int(getattr(text, "num_key_value_heads", None) or heads)
            head_dim = int(getattr(text, "head_dim", None) or text.hidden_size // heads)
        except (AttributeError, TypeError, ValueError):
            return None
        element = torch.empty((), dtype=DTYPES[dtype]).element_size()
        return cls(
            kv_bytes_per_token=layers * 2 * kv_heads * head_dim * element,
            score_bytes_per_token_pair=heads * 2 * 4 + 4,
        )

    def chunk_bytes(self, prompt_tokens: int, new_tokens: int, requests: int, rows: int) -> int:
        """A chunk of ``requests`` prompts (padded to ``prompt_tokens``) decoding ``rows`` rows.

        Each prompt is prefilled once (its attention scores), then every row (a request's beams)
        holds a KV cache of prompt plus new tokens.
        """
        kv = rows * (prompt_tokens + new_tokens) * self.kv_bytes_per_token
        return kv + requests * prompt_tokens * prompt_tokens * self.score_bytes_per_token_pair


def plan_chunks(
    lengths: Sequence[int],
    *,
    num_beams: Sequence[int],
    max_new_tokens: Sequence[int],
    batch_size: int,
    memory: MemoryModel | None = None,
    budget_bytes: float | None = None,
) -> list[list[int]]:
    """Split requests (indices into ``lengths``) into chunks for one decoding loop each.

    Requests are taken shortest prompt first (less padding); a chunk holds at most
    ``batch_size`` requests whatever their beam counts and, when a memory model and budget are
    given, at most ``budget_bytes`` of estimated KV cache plus prefill scores (prompts are padded
    to the chunk's longest, and every row is counted at the chunk's largest ``max_new_tokens``).
    A request that alone exceeds the budget still gets a chunk of its own.
    """
    if not len(lengths) == len(num_beams) == len(max_new_tokens):
        raise ValueError(
            f"plan_chunks got {len(lengths)} lengths, {len(num_beams)} beam counts and {len(max_new_tokens)} "
            "max_new_tokens; pass one of each per request"
        )
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    chunks: list[list[int]] = []
    current: list[int] = []
    for i in order:
        candidate = current + [i]
        fits = len(candidate) <= batch_size
        if fits and memory is not None and budget_bytes is not None and current:
            longest = max(lengths[j] for j in candidate)
            new = max(max_new_tokens[j] for j in candidate)
            rows = sum(num_beams[j] for j in candidate)
            fits = memory.chunk_bytes(longest, new, len(candidate), rows) <= budget_bytes
        if fits:
            current = candidate
        else:
            chunks.append(current)
            current = [i]
    if current:
        chunks.append(current)
    return chunks


# --------------------------------------------------------------------------- the backend


def _validate(config: GenerationConfig) -> None:
    if config.max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={config.max_new_tokens!r} must be >= 1")
    if config.min_new_tokens is not None and not 0 <= config.min_new_tokens <= config.max_new_tokens:
        raise ValueError(
            f"min_new_tokens={config.min_new_tokens!r} must be between 0 and max_new_tokens={config.max_new_tokens}"
        )
    if config.num_beams < 1:
        raise ValueError(f"num_beams={config.num_beams!r} must be >= 1")
    if config.temperature is not None and config.temperature < 0:
        raise ValueError(f"temperature={config.temperature!r} must be >= 0 (0 means greedy)")
    if config.top_p is not None and not 0 < config.top_p <= 1:
        raise ValueError(f"top_p={config.top_p!r} must be in (0, 1]")


def _samples(config: GenerationConfig) -> bool:
    """Whether the request samples; temperature 0 means greedy, as in the OpenAI API."""
    return bool(config.do_sample) and config.temperature != 0


def chunk_seed(seed: int | None, requests: Sequence[GenerationRequest]) -> int | None:
    """A torch seed for one chunk, from the backend seed and the requests' keys and seeds.

    None when neither the backend nor any request carries a seed (then nothing is seeded).
    Requests without a key are identified by their messages.
    """
    if seed is None and all(r.config.seed is None for r in requests):
        return None
    parts = [str(seed)]
    for r in requests:
        ident = r.key or repr(r.messages)
        parts.append(f"{ident}#{r.config.seed}")
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


def _loading(model: str, source: str, gguf: str | None, load: Any) -> Any:
    """Run one ``from_pretrained`` call; a failure becomes one ValueError naming the model and the fix
    (a truncated GGUF file raises numpy's "cannot reshape array", a cut-off folder an OSError)."""
    # transformers' own "Loading weights" bar would interleave with culturesim's progress line
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return load()
    except (OSError, ValueError, RuntimeError, KeyError, EOFError) as exc:
        if isinstance(exc, ModuleNotFoundError):
            raise
        shown = f"{source}/{gguf}" if gguf else source
        text = " ".join(str(exc).split())[:300]
        hint = ("the GGUF file looks truncated or corrupt: download it again" if gguf
                else "check that the folder or Hub id holds a complete transformers model (config.json, "
                     "tokenizer and weights), or download it again")
        raise ValueError(f"--model {model}: could not load {shown} ({type(exc).__name__}: {text}); {hint}") from exc
    finally:
        if bar:
            hf_logging.enable_progress_bar()


def _embedded_folder() -> Path | None:
    """The embedded model's converted transformers folder (made now if it is missing or stale: about
    20 s once; loading it then takes about 2.5 s, against about 20 s for every GGUF load), or None
    when it cannot be written (a read-only home folder, a full disk): then the GGUF file is read."""
    try:
        return embedded_model_folder()
    except OSError as exc:
        log.warning("Loading the embedded model from its GGUF file (about 20 s): its converted copy at %s "
                    "cannot be written (%s). Set %s to a writable folder to load it in about 2.5 s.",
                    default_embedded_folder(), exc, EMBEDDED_HF_DIR_ENV)
        return None


class TransformersBackend(Backend):
    """A local causal LM (the embedded SmolLM2 by default, a local path, or a Hub id).

    ``.model`` and ``.tokenizer`` are public so other estimators (``culturesim.simulator.estimators.logprob``) reuse the
    loaded weights.
    """

    name = "transformers"
    supported_params = SUPPORTED_PARAMS

    def __init__(
        self,
        model: str = EMBEDDED_MODEL,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 16,
        load_in_4bit: bool | None = None,
        gguf_file: str | None = None,
        seed: int | None = None,
        memory_budget_mb: float | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} must be >= 1")
        if memory_budget_mb is not None and memory_budget_mb <= 0:
            raise ValueError(f"memory_budget_mb={memory_budget_mb!r} must be > 0 (or None for the default)")
        self.model_id = model
        self.batch_size = batch_size
        self.concurrency = batch_size
        self.seed = seed
        where = resolve_model_source(model, gguf_file)
        source, gguf = where.source, where.gguf_file
        self.source = source
        self.gguf_file = gguf
        self.loaded_from = _embedded_folder() if where.kind == "embedded" and gguf == EMBEDDED_GGUF_FILE else None
        """The converted transformers folder the embedded model's weights were read from (None:
        read from ``source``/``gguf_file`` themselves); ``source`` and ``gguf_file`` still name the GGUF."""
        self._load(model, source, gguf, device, dtype, load_in_4bit)
        if memory_budget_mb is None and self.plan.device == "cpu":
            memory_budget_mb = CPU_MEMORY_BUDGET_MB
        self.memory_budget_mb = memory_budget_mb
        self.memory_model = MemoryModel.from_config(self.model.config, self.plan.dtype)

        eos: set[int] = set()
        for value in (self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id):
            if isinstance(value, int):
                eos.add(value)
            elif value:
                eos.update(int(v) for v in value)
        self.eos_token_ids = sorted(eos)

    def _load(self, model: str, source: str, gguf: str | None, device: str | None, dtype: str | None,
              load_in_4bit: bool | None) -> None:
        dequantised = bool(gguf)  # the converted embedded folder holds de-quantised GGUF weights too
        if self.loaded_from is not None:
            source, gguf = str(self.loaded_from), None
        hf_kwargs: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
        config = _loading(model, source, gguf, lambda: AutoConfig.from_pretrained(source, **hf_kwargs))
        checkpoint_q = checkpoint_quantization_method(config)
        self.num_parameters = count_parameters(config)
        self.plan = plan_load(
            device=device,
            dtype=dtype,
            load_in_4bit=load_in_4bit,
            num_parameters=self.num_parameters,
            checkpoint_quantization=checkpoint_q,
            gguf=dequantised,
        )
        check_quantization_packages(self.plan.quantization)

        self.tokenizer = _loading(model, source, gguf, lambda: AutoTokenizer.from_pretrained(source, **hf_kwargs))
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            if self.tokenizer.eos_token is None:
                raise ValueError(f"The tokenizer of {model!r} has neither a pad nor an EOS token; cannot pad batches.")
            self.tokenizer.pad_token = self.tokenizer.eos_token

        load_kwargs: dict[str, Any] = dict(hf_kwargs, dtype=DTYPES[self.plan.dtype])
        if self.plan.quantization == "bnb-nf4":
            from transformers import BitsAndBytesConfig

            load_kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                # bfloat16 compute where the GPU has it, float16 on a T4 (choose_dtype)
                bnb_4bit_compute_dtype=torch.float16 if self.plan.dtype == "float16" else torch.bfloat16,
            )
        if self.plan.device != "cpu" or self.plan.quantization != "none":
            target = self.plan.device
            if target == "cuda":
                target = f"cuda:{torch.cuda.current_device()}"
            load_kwargs["device_map"] = {"": target}
        self.model = _loading(model, source, gguf, lambda: AutoModelForCausalLM.from_pretrained(source, **load_kwargs))
        if "device_map" not in load_kwargs:
            self.model.to(self.plan.device)
        self.model.eval()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def describe(self) -> dict[str, object]:
        info = super().describe()
        info.update(
            model=self.model_id,
            source=self.source,
            gguf_file=self.gguf_file,
            loaded_from=None if self.loaded_from is None else str(self.loaded_from),
            device=self.plan.device,
            dtype=self.plan.dtype,
            batch_size=self.batch_size,
            quantization=self.plan.quantization,
            num_parameters=self.num_parameters,
            seed=self.seed,
            memory_budget_mb=self.memory_budget_mb,
            transformers_version=importlib.metadata.version("transformers"),
        )
        return info

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ---- generation

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return in_request_order(self.iter_generate(requests), len(requests))

    def iter_generate(self, requests: Sequence[GenerationRequest]) -> Iterator[list[tuple[int, GenerationResult]]]:
        """The results chunk by chunk, as each finishes (requests that cannot be tokenised first)."""
        requests = list(requests)
        prompts: dict[int, list[int]] = {}
        failed: list[tuple[int, GenerationResult]] = []
        for i, request in enumerate(requests):
            try:
                _validate(request.config)
                text, special = render_chat(self.tokenizer, request.messages)
                prompts[i] = self.tokenizer(text, add_special_tokens=special)["input_ids"]
            except Exception as exc:  # noqa: BLE001 - one bad request must not sink the batch
                failed.append((i, GenerationResult(text="", error=f"{type(exc).__name__}: {exc}")))
        if failed:
            yield failed
        members = sorted(prompts)
        budget = self.memory_budget_mb * 2**20 if self.memory_budget_mb is not None else None
        planned = plan_chunks(
            [len(prompts[i]) for i in members],
            num_beams=[requests[i].config.num_beams for i in members],
            max_new_tokens=[requests[i].config.max_new_tokens for i in members],
            batch_size=self.batch_size,
            memory=self.memory_model,
            budget_bytes=budget,
        )
        for positions in planned:
            chunk = [members[k] for k in positions]
            yield list(zip(chunk, self._run_safely([requests[i] for i in chunk], [prompts[i] for i in chunk])))

    def _run_safely(self, requests: list[GenerationRequest], prompts: list[list[int]]) -> list[GenerationResult]:
        """Run one chunk; on out-of-memory split it in halves; any other error is recorded per request."""
        try:
            return self._run_chunk(requests, prompts)
        except torch.OutOfMemoryError as exc:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if len(requests) > 1:
                half = len(requests) // 2
                log.warning("out of memory with %d requests in a chunk; splitting", len(requests))
                return self._run_safely(requests[:half], prompts[:half]) + self._run_safely(
                    requests[half:], prompts[half:]
                )
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
            log.exception("generation failed for a chunk of %d requests", len(requests))
            error = f"{type(exc).__name__}: {exc}"
        return [GenerationResult(text="", input_tokens=len(p), error=error) for p in prompts]

    def _run_chunk(self, requests: list[GenerationRequest], prompts: list[list[int]]) -> list[GenerationResult]:
        started = time.perf_counter()
        jobs = []
        for request, prompt in zip(requests, prompts):
            c = request.config
            sample = _samples(c)
            jobs.append(
                DecodeRequest(
                    prompt=prompt,
                    max_new_tokens=c.max_new_tokens,
                    min_new_tokens=c.min_new_tokens or 0,
                    num_beams=c.num_beams,
                    sample=sample,
                    temperature=c.temperature if sample and c.temperature is not None else 1.0,
                    top_p=c.top_p if sample and c.top_p is not None else 1.0,
                )
            )
        seed = chunk_seed(self.seed, requests)
        if seed is not None:
            torch.manual_seed(seed)
        with torch.inference_mode():
            decoded = decode(
                self.model,
                jobs,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_ids=self.eos_token_ids,
            )
        elapsed = time.perf_counter() - started
        results = []
        for prompt, answer in zip(prompts, decoded):
            # The EOS token that ended the answer was generated (it cost a step) and is counted.
            text_ids = answer.tokens[:-1] if answer.ended_by_eos else answer.tokens
            results.append(
                GenerationResult(
                    text=self.tokenizer.decode(text_ids, skip_special_tokens=True),
                    input_tokens=len(prompt),
                    output_tokens=len(answer.tokens),
                    latency_s=elapsed,
                )
            )
        return results


__all__ = [
    "BITSANDBYTES_REQUIREMENT",
    "CPU_MEMORY_BUDGET_MB",
    "FOUR_BIT_AUTO_THRESHOLD",
    "GPTQ_REQUIREMENTS",
    "LoadPlan",
    "MemoryModel",
    "SUPPORTED_PARAMS",
    "TransformersBackend",
    "check_quantization_packages",
    "checkpoint_quantization_method",
    "choose_dtype",
    "choose_quantization",
    "chunk_seed",
    "count_parameters",
    "missing_requirements",
    "plan_chunks",
    "plan_load",
    "render_chat",
    "resolve_device",
]
