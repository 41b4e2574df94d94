"""Survey questions as the simulator sees them, loaded from the built dataset.

The dataset record (../shared/DESIGN.md) is the contract; this module only reads it, so the
simulator, the reports and the Space work from the committed dataset folder on a fresh clone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from culturesim.metrics.cultural_alignment import VALUE_DIMENSIONS
from culturesim.dataset_builder.schema import data_files_by_config

DEFAULT_DATASET_DIR = Path(__file__).resolve().parent.parent / "dataset_builder" / "dataset"


@dataclass(frozen=True)
class Question:
    """One row of the dataset: a question asked of one culture in one language."""

    id: str
    culture: str
    language: str
    question: str
    options: tuple[str, ...]
    option_codes: tuple[int, ...]
    question_type: str
    ordinal: bool
    human_distribution: tuple[float, ...]
    human_n: int
    value_dimensions: tuple[str, ...] = ()
    topic: str = ""
    source: str = ""
    source_variable: str = ""
    parallel_id: str = ""
    demographics: tuple[dict[str, Any], ...] = field(default=(), compare=False)
    #: Share of those asked who gave no substantive answer (don't know, no answer, refused,
    #: skipped); None where the source has none (WVS).
    human_nonsubstantive_share: float | None = None
    #: The block of questions this one was asked in (dataset 3.0 ``battery``, e.g. "gss.abortion"):
    #: the metric's question bootstrap draws a battery's questions together.
    battery: str | None = None
    #: Respondents behind ``human_distribution`` divided by the weights' design effect (dataset 3.0
    #: ``human_n_effective``): the survey's own sampling noise in the metric's intervals and its
    #: "survey noise" yardstick. None where the source gives no weights (WVS aggregates).
    human_n_effective: float | None = None
    #: Kish design effect of the survey weights behind ``human_distribution`` (dataset 3.0).
    design_effect: float | None = None
    #: Who was asked, when only a sub-population was (dataset 3.0 ``universe``, e.g. "You are
    #: married."): the prompt states it, so the simulated participant is one of those people.
    universe: str | None = None
    #: Asked identically (one question, one option set) in all four cultures of the dataset: the
    #: culture map and cross-culture comparisons use only these items (dataset 3.0 ``comparable``).
    comparable: bool = False

    @property
    def num_options(self) -> int:
        return len(self.options)

    @classmethod
    def from_record(cls, row: dict[str, Any]) -> "Question":
        return cls(
            id=row["id"],
            culture=row["culture"],
            language=row["language"],
            question=row["question"],
            options=tuple(row["options"]),
            option_codes=tuple(int(c) for c in row["option_codes"]),
            question_type=row["question_type"],
            ordinal=bool(row["ordinal"]),
            human_distribution=tuple(float(x) for x in row["human_distribution"]),
            human_n=int(row["human_n"]),
            value_dimensions=tuple(row.get("value_dimensions") or ()),
            topic=row.get("topic") or "",
            source=row.get("source") or "",
            source_variable=row.get("source_variable") or "",
            parallel_id=row.get("parallel_id") or "",
            demographics=tuple(row.get("demographics") or ()),
            human_nonsubstantive_share=_optional_float(row.get("human_nonsubstantive_share")),
            battery=row.get("battery") or None,
            human_n_effective=_optional_float(row.get("human_n_effective")),
            design_effect=_optional_float(row.get("design_effect")),
            universe=row.get("universe") or None,
            comparable=bool(row.get("comparable") or False),
        )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def config_files(dataset_dir: str | Path | None = None) -> dict[str, Path]:
    """Config name -> its parquet file in a dataset folder (``data/US-<hash>.parquet``, or a plain
    ``data/US.parquet`` in a hand-made folder). Two files for one config is an error: a stale file
    left beside a rebuilt one would otherwise be read silently."""
    return data_files_by_config(Path(dataset_dir or DEFAULT_DATASET_DIR) / "data")


def dataset_cultures(dataset_dir: str | Path | None = None) -> list[str]:
    return sorted(config_files(dataset_dir))


def load_questions(
    culture: str = "US",
    language: str | None = None,
    limit: int | None = None,
    value_dimensions: list[str] | None = None,
    topics: list[str] | None = None,
    ids: list[str] | None = None,
    dataset_dir: str | Path | None = None,
) -> list[Question]:
    """Questions of one dataset config, filtered, in dataset order (stable across runs).

    ``culture`` names the config: a culture (``US``, ``CN``, ``JP``, ``EG``; ``US`` holds GSS 2022
    and WVS) or ``US_2024`` (the GSS 2024 wave, whose rows have culture ``US``).

    ``limit`` keeps that many questions spread over the survey's topics (``spread_over_topics``),
    not the first ones by id.

    ``language`` None keeps the culture's native-language rows (for US: English); pass
    ``"en"`` for the English parallel rows of a non-English culture.
    """
    files = config_files(dataset_dir)
    path = files.get(culture)
    if path is None:
        choices = ", ".join(sorted(files)) or "none built"
        folder = Path(dataset_dir or DEFAULT_DATASET_DIR) / "data"
        raise ValueError(f"No questions for culture {culture!r} in {folder}. Available configs: {choices}.")
    rows = pq.read_table(path).to_pylist()
    if language is None:
        native = [r for r in rows if r.get("is_native_language", True)]
        rows = native or rows
    else:
        rows = [r for r in rows if r["language"] == language]
        if not rows:
            raise ValueError(f"Culture {culture!r} has no questions in language {language!r}.")
    if value_dimensions:
        bad = sorted(set(value_dimensions) - set(VALUE_DIMENSIONS))
        if bad:
            raise ValueError(f"Unknown value dimension(s) {bad}; choose from {', '.join(VALUE_DIMENSIONS)}.")
        rows = [r for r in rows if set(r["value_dimensions"] or ()) & set(value_dimensions)]
    if topics:
        rows = [r for r in rows if r.get("topic") in set(topics)]
    if ids:
        wanted = set(ids)
        rows = [r for r in rows if r["id"] in wanted]
    questions = [Question.from_record(r) for r in rows]
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit={limit!r} must be >= 1")
        questions = spread_over_topics(questions, limit)
    return questions


def _round_robin(groups: list[list[Question]]) -> list[Question]:
    """Every group's first item, then every group's second item, and so on."""
    out: list[Question] = []
    for depth in range(max((len(g) for g in groups), default=0)):
        out.extend(g[depth] for g in groups if depth < len(g))
    return out


def spread_over_topics(questions: list[Question], n: int) -> list[Question]:
    """``n`` questions spread over the survey's sources and topics, returned in dataset order.

    Why: the dataset is ordered by id, so the first ten US questions are all GSS abortion items;
    a short run should instead sample the survey's breadth. Within each source (GSS, WVS) the
    topics take turns (topics in dataset order, each giving its next question); the sources then
    take turns; the first ``n`` of that sequence are kept. Deterministic: the same filters and
    ``n`` always give the same questions, and a larger ``n`` keeps every question a smaller one chose.
    """
    by_source: dict[str, dict[str, list[Question]]] = {}
    for q in questions:
        by_source.setdefault(q.source or "", {}).setdefault(q.topic or "", []).append(q)
    sequence = _round_robin([_round_robin(list(topics.values())) for topics in by_source.values()])
    chosen = {q.id for q in sequence[:n]}
    return [q for q in questions if q.id in chosen]
