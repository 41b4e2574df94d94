"""The Results tab: the results table (``culturesim results``) as a sortable table and a figure.

Why apart from ``results.py`` (one scored run): this shows many runs side by side, read from the
shipped results file (``space/leaderboard.jsonl``, or ``CULTURESIM_RESULTS_TABLE``), with nothing
scored here: every number is the metric's, copied into the row when it was added. The score
shown is chosen from the rows' own score keys (those with an interval), so a new metric
version's numbers appear without a change here; references (uniform, modal, samples of real
respondents) are drawn as lines the models can be read against.
"""

from __future__ import annotations

import html

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

import culturesim.space.common  # noqa: F401  (Agg backend and fonts before any figure)
from culturesim.metrics.cultural_alignment import describe
from culturesim.simulator.analysis.results_table import DEFAULT_TABLE, interval_of, read_table
from culturesim.space.common import ALL

__all__ = ["DEFAULT_SCORE", "leaderboard_figure", "leaderboard_frame", "leaderboard_note", "load_leaderboard",
           "score_choices", "slice_choices", "table_path"]

DEFAULT_SCORE = "normalised_kl"
"""Shown first: 1 = a perfect simulator, 0 = uniform answers; from the bias-corrected KL, so it does not depend
on a run's number of participants (the rows differ in it; normalised JS does not compare across them)."""
TABLE_ENV = "CULTURESIM_RESULTS_TABLE"


def table_path() -> Path:
    """The results file the Space shows: ``$CULTURESIM_RESULTS_TABLE`` or the shipped one."""
    return Path(os.environ.get(TABLE_ENV) or DEFAULT_TABLE)


def load_leaderboard(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The table's rows (none when the file does not exist yet)."""
    return read_table(path or table_path())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def score_choices(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Score keys that some row holds as a number with an interval, the default first."""
    keys = set()
    for row in rows:
        scores = row.get("scores") or {}
        keys.update(k for k, v in scores.items() if _is_number(v) and not k.endswith(("_ci_low", "_ci_high"))
                    and "participant" not in k and interval_of(scores, k)[0] is not None)
    return sorted(keys, key=lambda k: (k != DEFAULT_SCORE, k))


def slice_choices(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """``(all)`` and each culture-language the table holds (``US en``)."""
    return [ALL, *sorted({f"{r['culture']} {r['language']}" for r in rows})]


def _in_slice(row: Mapping[str, Any], where: str) -> bool:
    return where in (None, "", ALL) or f"{row['culture']} {row['language']}" == where


def _worth_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The metric's "worth N respondents" numbers, where its version reports them (not counts such
    as ``n_worth``, the questions it is over: the table's rows are not ranked by those)."""
    return sorted({k for r in rows for k, v in (r.get("scores") or {}).items()
                   if "worth" in k and _is_number(v) and not k.endswith(("_ci_low", "_ci_high"))
                   and "participant" not in k and not k.startswith("n_")})


def leaderboard_frame(rows: Sequence[Mapping[str, Any]], score: str = DEFAULT_SCORE, where: str = ALL) -> pd.DataFrame:
    """One line per row of the slice, best ``score`` first (lower first for a divergence): the key,
    the score with its 95% interval, worth-N where reported, and what the model is."""
    lower_better = _lower_is_better(score)
    worth = _worth_columns(rows)
    records = []
    for r in rows:
        if not _in_slice(r, where):
            continue
        scores = r.get("scores") or {}
        lo, hi = interval_of(scores, score)
        record = {"kind": r.get("kind"), "model": r.get("model"), "plan": r.get("plan"), "estimator": r.get("estimator"),
                  "culture": r.get("culture"), "language": r.get("language"), score: scores.get(score),
                  "ci low": lo, "ci high": hi}
        for key in worth:
            w_lo, w_hi = interval_of(scores, key)
            # within the survey's own noise the metric gives no number but worth_n_infinite: as close as the survey
            record[key] = float("inf") if scores.get(key) is None and scores.get(f"{key}_infinite") else scores.get(key)
            # no upper end: the interval reaches sample sizes as large as you like
            record[f"{key} interval"] = f"[{_fmt(w_lo)}, {_fmt(w_hi) if w_hi is not None else '∞'}]" \
                if w_lo is not None else ""
        record.update({"parse rate": r.get("parse_rate"), "participants": r.get("participants"),
                       "questions": r.get("questions"), "parameters": _params(r.get("model_parameters")),
                       "quantisation": r.get("quantisation"), "backend": r.get("backend"),
                       "hardware": r.get("hardware"), "threads": r.get("threads"),
                       "dataset": r.get("dataset_version"), "metric": r.get("metric_version"),
                       "reference": r.get("reference")})
        records.append(record)
    columns = ["kind", "model", "plan", "estimator", "culture", "language", score, "ci low", "ci high",
               *[c for k in worth for c in (k, f"{k} interval")], "parse rate", "participants", "questions",
               "parameters", "quantisation", "backend", "hardware", "threads", "dataset", "metric", "reference"]
    frame = pd.DataFrame(records, columns=columns)
    if len(frame):
        frame = frame.sort_values(score, ascending=lower_better, na_position="last", kind="stable")
        for col in (score, "ci low", "ci high", "parse rate", *worth):
            frame[col] = frame[col].map(lambda v: round(v, 4) if _is_number(v) else v)
    return frame.reset_index(drop=True)


def display_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the browser shows it: an infinite worth N ("as close as the survey itself") as
    the text "∞", since the Dataframe's JSON has no infinity and showed an empty cell."""
    out = frame.copy()
    for col in out.columns:
        if col.startswith("worth_n") and not col.endswith("interval"):
            out[col] = out[col].map(lambda v: "∞" if isinstance(v, float) and math.isinf(v) else v).astype(object)
    return out


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if _is_number(value) else "n/a"


def _params(value: Any) -> str | None:
    if not _is_number(value):
        return None
    return f"{value / 1e9:.2f}B" if value >= 1e9 else f"{value / 1e6:.0f}M"


def _lower_is_better(score: str) -> bool:
    """Divergences (kl, js, wasserstein and their floors) read lower-better; normalised scores,
    match rates and worth-N read higher-better."""
    return not any(word in score for word in ("normalised", "match", "worth", "structure")) and any(
        word in score for word in ("kl", "js", "wasserstein"))


def leaderboard_note(rows: Sequence[Mapping[str, Any]], score: str = DEFAULT_SCORE) -> str:
    """What the tab shows, in a few lines (the score's own meaning from the metric's glossary)."""
    if not rows:
        return (f"No results yet. Add a scored run with `culturesim results add RUN_DIR` (the table is "
                f"`{table_path().name}`), or run a study with `culturesim study benchmarks/study.yaml`.")
    models = sorted({r['model'] for r in rows if r.get('kind') == 'model'})
    # the glossary writes placeholders as <stat>, which Markdown would take for an HTML tag and hide
    meaning = html.escape(describe(score) or "", quote=False)
    return (f"{len(rows)} rows: {len(models)} model(s) ({', '.join(models)}) and "
            f"{sum(r.get('kind') == 'reference' for r in rows)} reference rows. **{score}**"
            f"{': ' + meaning if meaning else ''} · {'lower' if _lower_is_better(score) else 'higher'} is better · "
            "interval: the metric's 95% bootstrap interval over questions. Click a column header to sort.")


def leaderboard_figure(rows: Sequence[Mapping[str, Any]], score: str = DEFAULT_SCORE, where: str = ALL) -> Any:
    """Per culture-language panel: each model x plan x estimator's ``score`` with its interval as a
    horizontal bar; each reference as a vertical line. None when the slice has nothing to draw."""
    chosen = [r for r in rows if _in_slice(r, where) and _is_number((r.get("scores") or {}).get(score))]
    panels = sorted({f"{r['culture']} {r['language']}" for r in chosen})
    if not panels:
        return None
    models = [r for r in chosen if r.get("kind") != "reference"]
    height = max(2.6, 0.32 * max((sum(f"{r['culture']} {r['language']}" == p for r in models) for p in panels),
                                 default=1) + 1.6)
    fig, axes = plt.subplots(1, len(panels), figsize=(min(5.2 * len(panels), 15), height), dpi=100,
                             layout="constrained", squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, panel in zip(axes[0], panels):
        mine = [r for r in models if f"{r['culture']} {r['language']}" == panel]
        mine.sort(key=lambda r: (r["scores"][score], r["model"]), reverse=not _lower_is_better(score))
        for y, r in enumerate(mine):
            value = r["scores"][score]
            lo, hi = interval_of(r["scores"], score)
            # a percentile bootstrap interval need not hold its point estimate (one question in it, say):
            # the bar then starts at the point, not at a negative length (matplotlib refuses those)
            err = [[max(value - lo, 0.0)], [max(hi - value, 0.0)]] if _is_number(lo) and _is_number(hi) else None
            ax.errorbar([value], [y], xerr=err, fmt="o", capsize=3, color="#1f4e79")
        ax.set_yticks(range(len(mine)), [f"{r['model']} · {r['plan']} · {r['estimator']}" for r in mine], fontsize=8)
        refs = [r for r in chosen if r.get("kind") == "reference" and f"{r['culture']} {r['language']}" == panel]
        for i, r in enumerate(sorted(refs, key=lambda r: r["model"])):
            ax.axvline(r["scores"][score], linestyle="--", linewidth=1, color=colours[(i + 1) % len(colours)],
                       label=str(r["model"]).removeprefix("reference:"))
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel(score, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        if not mine:
            ax.set_yticks([])
    # one legend for every panel, below them, where it covers no point
    handles = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(list(handles.values()), list(handles.keys()), loc="outside lower center", ncol=len(handles),
                   fontsize=8, title="references (dashed lines)", title_fontsize=8, frameon=False)
    return fig
