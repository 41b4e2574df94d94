"""Structure fidelity of a run: its participants' answers across questions against the respondents'.

Why here: the metric (``metrics/cultural_alignment/structure.py``) takes two answer matrices; a run
folder holds one row per participant and question, and the dataset holds the respondents in its
respondents configs (``US_respondents``, ``US_2024_respondents``: one row per respondent, one
nullable int column per scored item, named by the item id). This module builds the two matrices
from a run's ok rows and the matching respondents config, calls the metric, and renders the result
for ``culturesim score`` (``summary_lines``), the report (``structure_for_report``,
``structure_html``, ``structure_figure``) and the Space.

What is compared: the run's ordinal single-choice and scale questions that are columns of the
respondents config (the config with the most of the run's question ids). A participant's answer is
its ok row's option index; any other status is a missing answer. Humans are weighted with the
cross-section weight ``weight`` for every pair (a sub-sample item's own weight, ``weight_nea`` or
``weight_next``, post-stratifies that random sub-sample only; a pair with a cross-section item needs
one weight for both). The sex x age spread needs each participant's ``persona`` to carry ``sex``
and ``age_group`` (as the respondents config spells them): runs made with ``culturesim simulate
--personas respondents`` (``culturesim.simulator.personas``) carry them; DEF personas alone carry a
location only, so for them the spread is left out and the result says why.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pyarrow.parquet as pq
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from culturesim.dataset_builder.respondents import respondents_files
from culturesim.metrics.cultural_alignment.structure import (
    MIN_GROUP_ANSWERS,
    STRUCTURE_REPLICATES,
    STRUCTURE_STATS,
    structure_fidelity,
)
from culturesim.simulator.questions import DEFAULT_DATASET_DIR, Question
from culturesim.simulator.runfolder import Status

__all__ = [
    "HUMAN_WEIGHT",
    "STAT_LABELS",
    "answer_matrix",
    "run_structure",
    "structure_figure",
    "structure_for_report",
    "structure_html",
    "summary_lines",
]

#: The respondents config's weight column used for every pair.
HUMAN_WEIGHT = "weight"
#: How each statistic is named in tables and figures.
STAT_LABELS = {"constraint": "constraint (mean |r|)", "pc1_share": "PC1 share", "distance": "distance to humans (RMSE)",
               "group_spread": "sex x age spread (JS)"}


def _not_available(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason}


def respondents_config(question_ids: Sequence[str], dataset_dir: str | Path | None) -> tuple[str, Path] | None:
    """The respondents config (name, file) holding the most of ``question_ids`` as columns (at least 2)."""
    wanted = set(question_ids)
    best: tuple[int, str, Path] | None = None
    for name, path in sorted(respondents_files(Path(dataset_dir or DEFAULT_DATASET_DIR)).items()):
        shared = len(wanted & set(pq.read_schema(path).names))
        if shared >= 2 and (best is None or shared > best[0]):
            best = (shared, name, path)
    return None if best is None else (best[1], best[2])


def answer_matrix(rows: Sequence[Mapping[str, Any]], questions: Sequence[Question],
                  participant_ids: Sequence[int] | None = None) -> tuple[list[int], np.ndarray, list[str | None]]:
    """(participant ids, participants x questions option indices with -1 where no ok answer, each
    participant's "sex/age_group" label or None). Participants are the run's (``participant_ids``)
    or those with a row, in id order."""
    column = {q.id: j for j, q in enumerate(questions)}
    ids = sorted(set(participant_ids) if participant_ids is not None else {int(r["participant_id"]) for r in rows})
    index = {p: i for i, p in enumerate(ids)}
    out = np.full((len(ids), len(questions)), -1, dtype=np.int64)
    labels: list[str | None] = [None] * len(ids)
    for row in rows:
        p = int(row["participant_id"])
        if p not in index:
            continue
        persona = row.get("persona") or {}
        sex, age = persona.get("sex"), persona.get("age_group")
        if isinstance(sex, str) and isinstance(age, str):  # a null (or NaN) sex or age: group unknown
            labels[index[p]] = f"{sex}/{age}"
        if row["status"] == Status.OK and row["question_id"] in column and len(row.get("option_indices") or []) == 1:
            out[index[p], column[row["question_id"]]] = int(row["option_indices"][0])
    return ids, out, labels


def run_structure(rows: Sequence[Mapping[str, Any]], questions: Sequence[Question], config: Mapping[str, Any],
                  dataset_dir: str | Path | None = None, replicates: int = STRUCTURE_REPLICATES, seed: int = 0,
                  return_matrices: bool = False) -> dict[str, Any]:
    """Structure fidelity of one run: ``{"available": True, "respondents_config", "questions_compared",
    "group_spread_note", **the metric's output}``, or ``{"available": False, "reason"}``.

    ``dataset_dir``: where the respondents configs are (default: the run's question source, else the
    committed dataset)."""
    estimator = str((config.get("estimator") or {}).get("name") or "sampling")
    if estimator != "sampling":
        return _not_available(f"the run reads the model with the {estimator} estimator, which gives one distribution "
                              "per question, not each participant's answers; structure needs answers across questions")
    if dataset_dir is None:
        dataset_dir = (config.get("question_selection") or {}).get("dataset_dir")
    folder = Path(dataset_dir or DEFAULT_DATASET_DIR)
    ordinal = [q for q in questions if q.ordinal and q.question_type != "multiple_choice"]
    if len(ordinal) < 2:
        return _not_available(f"the run has {len(ordinal)} ordinal single-choice question(s); correlations need two")
    found = respondents_config([q.id for q in ordinal], folder)
    if found is None:
        return _not_available(f"no respondents config in {folder / 'respondents'} holds two or more of the run's "
                              "ordinal questions (dataset 3.0 builds US_respondents and US_2024_respondents from the "
                              "GSS year files; WVS has no respondent-level data)")
    name, path = found
    names = set(pq.read_schema(path).names)
    compared = [q for q in ordinal if q.id in names]
    table = pq.read_table(path, columns=[HUMAN_WEIGHT, "sex", "age_group", *[q.id for q in compared]]).to_pandas()
    table = table[table[HUMAN_WEIGHT].notna() & (table[HUMAN_WEIGHT] > 0)]
    human = np.column_stack([table[q.id].to_numpy(dtype=float, na_value=np.nan) for q in compared])
    human = np.where(np.isnan(human), -1, human).astype(np.int64)
    human_groups = [f"{s}/{a}" if isinstance(s, str) and isinstance(a, str) else None
                    for s, a in zip(table["sex"], table["age_group"])]
    _, simulated, sim_groups = answer_matrix(rows, compared, config.get("participant_ids"))
    with_groups = any(g is not None for g in sim_groups)
    result = structure_fidelity(
        simulated, human, [q.num_options for q in compared], human_weights=table[HUMAN_WEIGHT].to_numpy(dtype=float),
        item_ids=[q.id for q in compared], simulated_groups=sim_groups if with_groups else None,
        human_groups=human_groups if with_groups else None, replicates=replicates, seed=seed,
        return_matrices=return_matrices)
    note = None if with_groups else ("not computed: the run's participants carry no sex and age group (their persona "
                                     "has a location only); `culturesim simulate --personas respondents` gives them one")
    if with_groups and result.get("group_spread_simulated") is None:
        note = (f"not computed: no question has two sex x age cells with {MIN_GROUP_ANSWERS} or more participants' "
                "answers")
    return {"available": True, "respondents_config": name, "questions_compared": len(compared),
            "group_spread_note": note, **result}


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _range(lo: Any, hi: Any) -> str:
    return f"[{_num(lo)}, {_num(hi)}]" if lo is not None and hi is not None else "[n/a]"


def summary_lines(structure: Mapping[str, Any] | None) -> list[str]:
    """The lines ``culturesim score`` prints: each statistic, simulated [interval] against the
    humans' and the yardstick's [interval]."""
    if not structure:
        return []
    if not structure.get("available"):
        return [f"  structure fidelity: not available ({structure.get('reason')})"]
    s = structure
    lines = [f"  structure fidelity over {s['n_pairs']} item pairs of {s['n_items']} ordinal questions "
             f"({s['participants']} participants vs {s['respondents']} respondents of {s['respondents_config']}):"]
    for stat in STRUCTURE_STATS:
        if s.get(f"{stat}_simulated") is None:
            continue
        human = "" if stat == "distance" else f", humans {_num(s.get(f'{stat}_human'))}"
        lines.append(f"    {STAT_LABELS[stat]}: simulated {_num(s.get(f'{stat}_simulated'))} "
                     f"{_range(s.get(f'{stat}_simulated_ci_low'), s.get(f'{stat}_simulated_ci_high'))}{human}, "
                     f"yardstick {_num(s.get(f'{stat}_yardstick'))} "
                     f"{_range(s.get(f'{stat}_yardstick_ci_low'), s.get(f'{stat}_yardstick_ci_high'))}")
    if s.get("group_spread_note"):
        lines.append(f"    sex x age spread: {s['group_spread_note']}")
    lines.append("  (yardstick: the same statistic for random samples of as many real respondents, i.e. what a perfect "
                 "simulator of this size scores; simulated outside the yardstick interval = not explained by sample "
                 "size)")
    return lines


def _pc1_order(matrix: np.ndarray) -> np.ndarray:
    """Items ordered by their loading on the human matrix's first principal component, so that
    blocks of correlated items sit together in the heatmaps."""
    m = np.nan_to_num(matrix)
    _, vectors = np.linalg.eigh(m)
    return np.argsort(vectors[:, -1])


def structure_figure(result: Mapping[str, Any], title: str = "") -> Figure:
    """Human and simulated correlation matrices side by side (items in the human PC1 order, pairs
    that are not compared blank, one colour scale from -1 to 1), and each statistic as the run's
    value with its interval beside the yardstick's interval and the humans' value."""
    human = np.array([[np.nan if v is None else v for v in row] for row in result["human_matrix"]], dtype=float)
    sim = np.array([[np.nan if v is None else v for v in row] for row in result["simulated_matrix"]], dtype=float)
    shown = np.array(result["pairs"], dtype=bool) | np.eye(len(human), dtype=bool)
    used = shown.sum(axis=0) > 1
    human, sim, shown = human[np.ix_(used, used)], sim[np.ix_(used, used)], shown[np.ix_(used, used)]
    order = _pc1_order(np.where(shown, human, 0.0)) if len(human) else np.arange(0)
    # a Figure without pyplot: no global state, so the Space may draw it from any thread
    fig = Figure(figsize=(11, 4.4), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)  # off-screen canvas: draws, measures (figures.layout_problems) and saves
    grid = fig.add_gridspec(1, 3, width_ratios=[1, 1, 1.2])
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="0.85")  # pairs not compared: grey, not r = 0's white
    image = None
    for col, (matrix, label) in enumerate(((human, "Humans"), (sim, "Simulated participants"))):
        ax = fig.add_subplot(grid[0, col])
        data = np.where(shown, matrix, np.nan)[np.ix_(order, order)]
        image = ax.imshow(data, cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
        ax.set_title(label, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"{len(order)} items, human PC1 order", fontsize=8)
    if image is not None:
        bar = fig.colorbar(image, ax=fig.axes, location="left", shrink=0.8)
        bar.set_label("weighted Spearman r (grey: pair not compared)", fontsize=8)
    ax = fig.add_subplot(grid[0, 2])
    stats = [s for s in STRUCTURE_STATS if result.get(f"{s}_simulated") is not None]
    for y, stat in enumerate(stats):
        lo, hi = result.get(f"{stat}_yardstick_ci_low"), result.get(f"{stat}_yardstick_ci_high")
        if lo is not None and hi is not None:
            ax.plot([lo, hi], [y + 0.15, y + 0.15], color="0.55", linewidth=6, solid_capstyle="butt",
                    label="yardstick 95% (humans, run's size)" if y == 0 else None)
        value = result[f"{stat}_simulated"]
        slo, shi = result.get(f"{stat}_simulated_ci_low"), result.get(f"{stat}_simulated_ci_high")
        err = None if slo is None or shi is None else [[max(value - slo, 0.0)], [max(shi - value, 0.0)]]
        ax.errorbar([value], [y - 0.15], xerr=err, fmt="o", color="C3", capsize=3,
                    label="simulated, 95% interval" if y == 0 else None)
        if result.get(f"{stat}_human") is not None:
            ax.plot([result[f"{stat}_human"]], [y + 0.15], marker="|", markersize=14, color="k",
                    label="all respondents" if y == 0 else None)
    ax.set_yticks(range(len(stats)), [STAT_LABELS[s] for s in stats], fontsize=8)
    ax.set_ylim(len(stats) - 0.5, -0.5)
    ax.set_xlabel("value", fontsize=8)
    ax.set_title("Statistics against the yardstick", fontsize=10)
    ax.tick_params(axis="x", labelsize=8)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", fontsize=8, ncol=3, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def structure_for_report(runs: Sequence[Mapping[str, Any]], seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, Figure]]:
    """Per run (dicts with ``label``, ``rows``, ``questions``, ``config`` and, from ``score_run``,
    ``structure``): its structure numbers for report.json (no matrices) and, where available, its
    figure (``structure_<i>``). The numbers come from the scores when given, the matrices from a
    recomputation without replicates (the point estimates are the same)."""
    section, figs = [], {}
    for i, run in enumerate(runs):
        numbers = run.get("structure")
        with_matrices = run_structure(run["rows"], run["questions"], run["config"], replicates=0, seed=seed,
                                      return_matrices=True)
        if numbers is None:
            numbers = {k: v for k, v in with_matrices.items()
                       if k not in ("items", "human_matrix", "simulated_matrix", "pairs")}
        section.append({"label": run["label"], **numbers})
        if with_matrices.get("available") and with_matrices.get("n_pairs"):
            figs[f"structure_{i}"] = structure_figure({**with_matrices, **numbers}, f"Structure: {run['label']}")
    return section, figs


def structure_html(section: Sequence[Mapping[str, Any]] | None, figs: Mapping[str, str],
                   table: Callable[..., str], img: Callable[[Mapping[str, str], str, str], str]) -> str:
    """The report's structure fidelity section (``table(header, rows, cls)`` and ``img(figs, name,
    alt)`` are the report's)."""
    if not section:
        return ""
    parts = [
        "<h2 id=structure>Structure fidelity</h2>",
        "<p>Do the simulated participants' answers hang together the way real people's do? For every pair of "
        "ordinal questions answered by enough people on both sides, the weighted Spearman correlation; "
        "<b>constraint</b> is the mean absolute correlation (GSS 2024, 52 attitude items: 0.144; every LLM in Barrie "
        "&amp; Cerina 2026 was above it), <b>PC1 share</b> how much one dimension organises the answers, "
        "<b>distance</b> the RMSE between the two correlation matrices. The <b>yardstick</b> is the same statistic for "
        "random samples of as many real respondents as the run has participants: a perfect simulator of this size "
        "lands inside its interval; few participants make correlations noisy, which the yardstick shows. Every term "
        "is in the <a href=#glossary>glossary</a>.</p>",
    ]
    for i, s in enumerate(section):
        parts.append(f"<h3>{html.escape(str(s['label']))}</h3>")
        if not s.get("available"):
            parts.append(f"<p>Not available: {html.escape(str(s.get('reason')))}</p>")
            continue
        parts.append(f"<p>{s['n_pairs']} item pairs of {s['n_items']} ordinal questions; {s['participants']} "
                     f"participants against {s['respondents']} respondents of {html.escape(str(s['respondents_config']))}"
                     + (f"; answered alike by every participant (no correlation): "
                        f"{html.escape(', '.join(s['unanimous_items']))}" if s.get("unanimous_items") else "")
                     + ".</p>")
        rows = [[STAT_LABELS[stat], s.get(f"{stat}_simulated"), s.get(f"{stat}_simulated_ci_low"),
                 s.get(f"{stat}_simulated_ci_high"), s.get(f"{stat}_human"), s.get(f"{stat}_yardstick"),
                 s.get(f"{stat}_yardstick_ci_low"), s.get(f"{stat}_yardstick_ci_high")]
                for stat in STRUCTURE_STATS if s.get(f"{stat}_simulated") is not None]
        parts.append(table(["statistic", "simulated", "CI low", "CI high", "humans", "yardstick", "yardstick low",
                            "yardstick high"], rows, "structure"))
        if s.get("group_spread_note"):
            parts.append(f"<p>Sex x age spread {html.escape(s['group_spread_note'])}.</p>")
        parts.append(img(figs, f"structure_{i}", f"structure {s['label']}"))
    return "".join(parts)
