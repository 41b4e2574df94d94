"""The report's figures, as pure functions from numbers to a matplotlib Figure.

Each function takes plain dicts (the numbers that also go into report.json) and returns a
Figure, so the report, the Space and a researcher's notebook draw the same pictures from
the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

DIMENSIONS = ("EVI", "IDV", "IVR", "LTO", "MAS", "PDI", "UAI", "TDI", "USI")
GROUPS = (("sex", "female"), ("sex", "male"), ("age", "18-29"), ("age", "30-49"), ("age", "50+"))


def dimension_bars(per_run: Mapping[str, Mapping[str, Mapping[str, Any]]], metric: str = "kl") -> Figure:
    """Mean divergence per value dimension, one bar group per dimension, one bar per run, 95% CIs."""
    fig, ax = plt.subplots(figsize=(9, 4), dpi=110)
    runs = list(per_run)
    dims = [d for d in DIMENSIONS if any(d in per_run[r] for r in runs)]
    width = 0.8 / max(1, len(runs))
    x = np.arange(len(dims))
    for i, run in enumerate(runs):
        means = [per_run[run].get(d, {}).get(f"{metric}_mean", np.nan) for d in dims]
        lows = [per_run[run].get(d, {}).get(f"{metric}_ci_low", np.nan) for d in dims]
        highs = [per_run[run].get(d, {}).get(f"{metric}_ci_high", np.nan) for d in dims]
        err = np.array([[m - lo if np.isfinite(lo) else 0 for m, lo in zip(means, lows)],
                        [hi - m if np.isfinite(hi) else 0 for m, hi in zip(means, highs)]])
        ax.bar(x + i * width - 0.4 + width / 2, means, width, yerr=np.clip(err, 0, None), capsize=2, label=run)
    ax.set_xticks(x, dims)
    ax.set_ylabel(f"mean {metric.upper()} (lower = closer to humans)")
    ax.set_title(f"{metric.upper()} divergence per value dimension (95% bootstrap CI)")
    if len(runs) > 1:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def question_distribution(per_run: Mapping[str, Sequence[float]], ceiling: Sequence[float] | None = None,
                          metric: str = "kl") -> Figure:
    """Per-question divergence of each run as violins with the points on top (and the human ceiling)."""
    fig, ax = plt.subplots(figsize=(9, 4), dpi=110)
    series = {k: [v for v in vals if np.isfinite(v)] for k, vals in per_run.items()}
    if ceiling is not None:
        series = {"human split-half": [v for v in ceiling if np.isfinite(v)], **series}
    labels = [k for k, v in series.items() if v]
    data = [series[k] for k in labels]
    if data:
        ax.violinplot(data, showmedians=True)
        rng = np.random.default_rng(0)
        for i, vals in enumerate(data, start=1):
            ax.scatter(i + rng.uniform(-0.08, 0.08, len(vals)), vals, s=6, alpha=0.5, color="black")
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=15, fontsize=8)
    ax.set_ylabel(f"{metric.upper()} per question")
    ax.set_title(f"Per-question {metric.upper()} divergence from the human distribution")
    fig.tight_layout()
    return fig


def culture_map(projection: Mapping[str, Any], humans: Sequence[str] = ()) -> Figure:
    """Scatter of the PCA projection: human populations as squares, model runs as circles."""
    fig, ax = plt.subplots(figsize=(6.5, 5), dpi=110)
    points = projection.get("points", {})
    for label, (x, y) in points.items():
        is_human = label in humans
        ax.scatter([x], [y], marker="s" if is_human else "o", s=70, color="tab:blue" if is_human else "tab:red")
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ratio = projection.get("explained_variance_ratio", [np.nan, np.nan]) + [np.nan]
    ax.set_xlabel(f"PC1 ({ratio[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({ratio[1]:.0%} of variance)" if np.isfinite(ratio[1]) else "PC2")
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_title("Cultural variation map (squares: human populations, circles: model runs)")
    fig.tight_layout()
    return fig


def bias_heatmaps(profile: Mapping[str, Mapping[str, Mapping[str, float]]], title: str = "") -> Figure:
    """Groups x value dimensions heatmaps of preferred-group counts: matched and mismatched.

    ``profile``: {"matched"|"mismatched": {dimension: {"female": n, "male": n, "18-29": n, ...}}}.
    """
    kinds = [k for k in ("matched", "mismatched") if k in profile]
    fig, axes = plt.subplots(1, max(1, len(kinds)), figsize=(5.5 * max(1, len(kinds)), 3.8), dpi=110, squeeze=False)
    group_names = [g for _, g in GROUPS]
    for ax, kind in zip(axes[0], kinds):
        dims = [d for d in DIMENSIONS if d in profile[kind]]
        ax.set_title(f"{kind} questions", fontsize=9)
        if not dims:
            ax.text(0.5, 0.5, "no question here has sex and age\nbreakdowns of the human answers", ha="center",
                    va="center", fontsize=9, transform=ax.transAxes)
            ax.set_axis_off()
            continue
        matrix = np.array([[float(profile[kind][d].get(g, 0.0)) for d in dims] for g in group_names])
        im = ax.imshow(matrix, aspect="auto", cmap="Blues")
        ax.set_xticks(range(len(dims)), dims, fontsize=8)
        ax.set_yticks(range(len(group_names)), group_names, fontsize=8)
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                ax.text(j, i, f"{matrix[i, j]:g}", ha="center", va="center", fontsize=7)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(title or "Preference bias: whose answer the model's preferred option is most typical of", fontsize=10)
    fig.tight_layout()
    return fig


def insensitivity_radar(per_run: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Figure:
    """Share of responses flagged on each of the six insensitivity dimensions, one polygon per run."""
    dims = ("IU", "QC", "RP", "CV", "FF", "IR")
    angles = np.linspace(0, 2 * np.pi, len(dims), endpoint=False).tolist()
    fig = plt.figure(figsize=(5.5, 5), dpi=110)
    ax = fig.add_subplot(polar=True)
    for run, summary in per_run.items():
        values = [summary.get(d, {}).get("rate") for d in dims]
        values = [float(v) if v is not None else 0.0 for v in values]
        ax.plot(angles + angles[:1], values + values[:1], label=run)
        ax.fill(angles + angles[:1], values + values[:1], alpha=0.15)
    ax.set_xticks(angles, dims)
    ax.set_ylim(0, 1)
    ax.set_title("Insensitivity: share of responses flagged (decided cells)", fontsize=10)
    if len(per_run) > 1:
        ax.legend(fontsize=7, loc="upper right", bbox_to_anchor=(1.3, 1.1))
    fig.tight_layout()
    return fig


def ablation_bars(distinct: Mapping[str, float], gains: Mapping[str, float] | None = None) -> Figure:
    """Mean distinct answers per question for each diversity plan, with the gain over `none`."""
    fig, ax = plt.subplots(figsize=(7, 3.8), dpi=110)
    plans = list(distinct)
    bars = ax.bar(plans, [distinct[p] for p in plans], color="tab:green")
    for bar, plan in zip(bars, plans):
        gain = (gains or {}).get(plan)
        if gain is not None and plan != "none":
            ax.annotate(f"{gain:+.1f}%", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("distinct answers per question")
    ax.set_title("Diversity ablation (gain over plan 'none')")
    fig.tight_layout()
    return fig
