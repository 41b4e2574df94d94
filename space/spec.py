"""What to simulate: the Simulate tab's choices as one checked ``JobSpec``."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from culturesim.simulator.questions import Question, load_questions
from culturesim.metrics.cultural_alignment import VALUE_DIMENSIONS
from culturesim.space.common import EMBEDDED_MODEL, MODEL_KINDS
from culturesim.space.explore import unique
from culturesim.simulator.participants import plan_names

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# Jobs: what to simulate, and whether it is allowed here
# --------------------------------------------------------------------------------------


def language_choices(frame: pd.DataFrame, culture: str) -> list[str]:
    """The question languages of a culture, native first (e.g. CN: zh, en)."""
    rows = frame[frame["culture"] == culture]
    if rows.empty:
        raise ValueError(f"Unknown culture {culture!r}; choose one of {', '.join(unique(frame['culture']))}.")
    native = unique(rows[rows["is_native_language"].astype(bool)]["language"])
    return native + [x for x in unique(rows["language"]) if x not in native]


def selection_choices(frame: pd.DataFrame, culture: str, language: str | None, select_by: str) -> list[str]:
    """The value dimensions or topics present among a culture's questions in a language."""
    rows = frame[frame["culture"] == culture]
    if language:
        rows = rows[rows["language"] == language]
    if select_by == "value dimension":
        return sorted({d for ds in rows["value_dimensions"] for d in ds}, key=VALUE_DIMENSIONS.index)
    if select_by == "topic":
        return unique(rows["topic"])
    return []


def plan_choices() -> list[str]:
    """The runner's plans (none, prompt, config, memory, combinations, all = DEF, baselines)."""

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
