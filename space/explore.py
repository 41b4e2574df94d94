"""The Explore tab: filter the dataset and show one question's human distribution."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # the Space renders figures off-screen, in worker threads
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from culturesim.simulator.questions import DEFAULT_DATASET_DIR  # noqa: E402
from culturesim.metrics.cultural_alignment import VALUE_DIMENSIONS  # noqa: E402
from culturesim.space.common import ALL  # noqa: E402

log = logging.getLogger(__name__)


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


def unique(values: Sequence[Any]) -> list[str]:
    return sorted({str(v) for v in values if v is not None and str(v) != ""})


def explore_choices(frame: pd.DataFrame) -> dict[str, list[str]]:
    """The values each Explore filter can take, each list headed by ``ALL``."""
    dims = sorted({d for ds in frame["value_dimensions"] for d in ds}, key=VALUE_DIMENSIONS.index)
    return {
        "culture": [ALL, *unique(frame["culture"])],
        "language": [ALL, *unique(frame["language"])],
        "source": [ALL, *unique(frame["source"])],
        "topic": [ALL, *unique(frame["topic"])],
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
                raise ValueError(f"Unknown {column} {value!r}; choose one of {', '.join(unique(frame[column]))}.")
            rows = rows[rows[column].astype(str) == value]
    if value_dimension and value_dimension != ALL:
        if value_dimension not in VALUE_DIMENSIONS:
            raise ValueError(f"Unknown value dimension {value_dimension!r}; choose from {', '.join(VALUE_DIMENSIONS)}.")
        # .loc with a bool array: on an empty frame rows[mask] reads an empty mask as column labels
        rows = rows.loc[np.array([value_dimension in ds for ds in rows["value_dimensions"]], dtype=bool)]
    if search and search.strip():
        needle = search.strip().lower()
        rows = rows.loc[np.array([needle in str(q).lower() or needle in str(i).lower()
                                  for q, i in zip(rows["question"], rows["id"])], dtype=bool)]
    out = rows[EXPLORE_COLUMNS].copy()
    out["value_dimensions"] = out["value_dimensions"].map(" ".join)
    out["options"] = out["options"].map(len)
    return out.reset_index(drop=True)


def explore_languages(frame: pd.DataFrame, culture: str = ALL) -> list[str]:
    """The Language filter's choices for a culture (``ALL`` first): only languages it has questions in."""
    rows = frame if not culture or culture == ALL else frame[frame["culture"].astype(str) == culture]
    return [ALL, *unique(rows["language"])]


def explore_message(table: pd.DataFrame, filters: dict[str, str]) -> str:
    """The line above the Explore table: how many questions match, or why none does."""
    if len(table):
        return f"{len(table)} question{'s' if len(table) != 1 else ''}"
    chosen = ", ".join(f"{k} {v}" for k, v in filters.items() if v and v != ALL) or "these filters"
    return (f"**No question matches** {chosen}. Widen a filter: not every culture has every language, and "
            "not every value dimension is tagged in every culture.")


def wrap(text: str, width: int = 38) -> str:
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
    axes[0][0].set_yticklabels([wrap(o) for o in options], fontsize=8)
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
