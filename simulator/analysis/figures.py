"""The report's figures, as pure functions from numbers to a matplotlib Figure.

Each function takes plain dicts (the numbers that also go into report.json) and returns a
Figure, so the report, the Space and a researcher's notebook draw the same pictures from
the same numbers.

Layout rules every figure keeps (``layout_problems`` checks them, the tests run it on every
figure): no text leaves the canvas and no two texts overlap; a colour scale is shared by
the panels of one figure and its meaning is written on its colour bar; a value that is
undefined (nothing decided, one question behind an interval) is drawn as such, never as a
zero or as a precise-looking bar. Figures use matplotlib's constrained layout, which makes
room for titles, legends and colour bars instead of clipping them.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from culturesim.metrics.cultural_alignment import VALUE_DIMENSIONS  # noqa: E402
from culturesim.simulator.analysis.fonts import use_fonts  # noqa: E402
from culturesim.simulator.analysis.insensitivity import DIMENSIONS as INSENSITIVITY_CHECKS  # noqa: E402

use_fonts()  # questions and options in Chinese, Japanese and Arabic

__all__ = [
    "DIMENSIONS",
    "GROUPS",
    "INSENSITIVITY_DIMENSIONS",
    "ablation_bars",
    "bias_heatmaps",
    "culture_map",
    "dimension_bars",
    "insensitivity_radar",
    "layout_problems",
    "question_distribution",
]

DIMENSIONS = VALUE_DIMENSIONS
GROUPS = (("sex", "female"), ("sex", "male"), ("age", "18-29"), ("age", "30-49"), ("age", "50+"))
INSENSITIVITY_DIMENSIONS = INSENSITIVITY_CHECKS
_DPI = 110


def _wrap(label: str, width: int = 24) -> str:
    return "\n".join(textwrap.wrap(str(label), width)) or str(label)


def _legend_below(fig: Figure, ax: Any, ncol: int | None = None, extra: Sequence[Any] = ()) -> None:
    """A legend under the plot, where long run labels cannot cover data or leave the canvas."""
    handles, labels = ax.get_legend_handles_labels()
    handles, labels = handles + list(extra), labels + [h.get_label() for h in extra]
    if handles:
        fig.legend(handles, [_wrap(lb, 40) for lb in labels], loc="outside lower center", fontsize=8,
                   ncol=ncol or min(len(handles), 2), frameon=False)


def dimension_bars(per_run: Mapping[str, Mapping[str, Mapping[str, Any]]], metric: str = "kl") -> Figure:
    """Mean divergence per value dimension, one bar group per dimension, one bar per run, 95% CIs.

    Each dimension's tick says how many questions it rests on; a mean resting on one question
    has no interval and is drawn hatched, without an error bar, so it does not look precise.
    """
    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=_DPI, layout="constrained")
    runs = list(per_run)
    dims = [d for d in DIMENSIONS if any(d in per_run[r] for r in runs)]
    width = 0.8 / max(1, len(runs))
    x = np.arange(len(dims))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    single = False
    for i, run in enumerate(runs):
        colour = colours[i % len(colours)]
        stats = [per_run[run].get(d, {}) for d in dims]
        means = np.array([s.get(f"{metric}_mean") if s.get(f"{metric}_mean") is not None else np.nan for s in stats],
                         dtype=float)
        lows = np.array([s.get(f"{metric}_ci_low") if s.get(f"{metric}_ci_low") is not None else np.nan for s in stats],
                        dtype=float)
        highs = np.array([s.get(f"{metric}_ci_high") if s.get(f"{metric}_ci_high") is not None else np.nan
                          for s in stats], dtype=float)
        n_q = [int(s.get("n_questions") or 0) for s in stats]
        one = np.array([n == 1 for n in n_q])
        single |= bool(one.any())
        has_ci = np.isfinite(lows) & np.isfinite(highs) & ~one
        err = np.where(has_ci, np.vstack([means - lows, highs - means]), 0.0)
        pos = x + i * width - 0.4 + width / 2
        ax.bar(pos[~one], means[~one], width, yerr=np.clip(err[:, ~one], 0, None), capsize=2, color=colour,
               label=_wrap(run, 40))
        if one.any():
            ax.bar(pos[one], means[one], width, color="white", edgecolor=colour, hatch="///", linewidth=1)
    labels = []
    for d in dims:
        counts = sorted({int(per_run[r].get(d, {}).get("n_questions") or 0) for r in runs if d in per_run[r]})
        labels.append(f"{d}\nn={', '.join(str(c) for c in counts)}")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel(f"mean {metric.upper()} (lower = closer to humans)")
    ax.set_title(f"{metric.upper()} divergence per value dimension (95% bootstrap CI over questions)", fontsize=10)
    extra = [Patch(facecolor="white", edgecolor="grey", hatch="///", label="one question: no interval")] if single else []
    if len(runs) > 1 or single:
        _legend_below(fig, ax, extra=extra)
    ax.set_ylim(bottom=0)
    return fig


def question_distribution(per_run: Mapping[str, Sequence[float]],
                          yardsticks: Mapping[str, Sequence[float]] | None = None, metric: str = "kl") -> Figure:
    """Per-question divergence of each run as violins with the points on top, after the yardsticks
    (per question: what a perfect simulator with the run's P scores, the survey's own noise), so
    a run's spread reads against what sampling noise alone gives."""
    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=_DPI, layout="constrained")
    series = {k: [v for v in vals if v is not None and np.isfinite(v)] for k, vals in per_run.items()}
    if yardsticks:
        series = {**{f"yardstick: {k}": [v for v in vals if v is not None and np.isfinite(v)]
                     for k, vals in yardsticks.items()}, **series}
    labels = [k for k, v in series.items() if v]
    data = [series[k] for k in labels]
    if data:
        violins = [i for i, vals in enumerate(data, start=1) if len(vals) > 1]
        if violins:
            ax.violinplot([data[i - 1] for i in violins], positions=violins, showmedians=True)
        rng = np.random.default_rng(0)
        for i, vals in enumerate(data, start=1):
            ax.scatter(i + rng.uniform(-0.08, 0.08, len(vals)), vals, s=6, alpha=0.5, color="black")
    width = max(12, int(90 / max(1, len(labels))))
    ax.set_xticks(range(1, len(labels) + 1), [f"{_wrap(k, width)}\n({len(series[k])} questions)" for k in labels],
                  fontsize=8)
    ax.set_ylabel(f"{metric.upper()} per question (lower = closer)")
    ax.set_title(f"Per-question {metric.upper()} divergence from the human distribution", fontsize=10)
    ax.set_ylim(bottom=0)
    return fig


def _boxes_overlap(a: Any, b: Any, pad: float = 1.0) -> bool:
    return not (a.x1 + pad <= b.x0 or b.x1 + pad <= a.x0 or a.y1 + pad <= b.y0 or b.y1 + pad <= a.y0)


def culture_map(projection: Mapping[str, Any], humans: Sequence[str] = ()) -> Figure:
    """Scatter of the PCA projection: human populations as squares, model runs as circles.

    Labels are placed one by one at the first of eight positions around their point where
    they overlap no label or marker placed before and stay inside the axes (the axes grow a
    margin for them), so close populations (US and JP) stay readable.
    """
    fig, ax = plt.subplots(figsize=(7, 5.4), dpi=_DPI, layout="constrained")
    points = {k: (float(v[0]), float(v[1])) for k, v in projection.get("points", {}).items()}
    for label, (x, y) in points.items():
        is_human = label in humans
        ax.scatter([x], [y], marker="s" if is_human else "o", s=70, color="tab:blue" if is_human else "tab:red",
                   zorder=3)
    ratio = list(projection.get("explained_variance_ratio") or []) + [np.nan, np.nan]
    ax.set_xlabel(f"PC1 ({ratio[0]:.0%} of variance)" if np.isfinite(ratio[0]) else "PC1")
    ax.set_ylabel(f"PC2 ({ratio[1]:.0%} of variance)" if np.isfinite(ratio[1]) else "PC2")
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_title("Cultural variation map (principal components of the value-dimension positions)", fontsize=10,
                 wrap=True)
    fig.legend(handles=[Patch(color="tab:blue", label="human population (WVS)"),
                        Patch(color="tab:red", label="model run")],
               loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    if points:
        xs, ys = zip(*points.values())
        span_x = (max(xs) - min(xs)) or 1.0
        span_y = (max(ys) - min(ys)) or 1.0
        ax.set_xlim(min(xs) - 0.45 * span_x, max(xs) + 0.45 * span_x)
        ax.set_ylim(min(ys) - 0.25 * span_y, max(ys) + 0.25 * span_y)
    _place_labels(fig, ax, points)
    return fig


def _place_labels(fig: Figure, ax: Any, points: Mapping[str, tuple[float, float]]) -> None:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes_box = ax.get_window_extent(renderer)
    marker_boxes = []
    for x, y in points.values():
        px, py = ax.transData.transform((x, y))
        marker_boxes.append(matplotlib.transforms.Bbox([[px - 6, py - 6], [px + 6, py + 6]]))
    placed: list[Any] = []
    offsets = [(7, 5, "left", "bottom"), (7, -5, "left", "top"), (-7, 5, "right", "bottom"), (-7, -5, "right", "top"),
               (0, 9, "center", "bottom"), (0, -9, "center", "top"), (12, 0, "left", "center"),
               (-12, 0, "right", "center"), (7, 16, "left", "bottom"), (7, -16, "left", "top"),
               (-7, 16, "right", "bottom"), (-7, -16, "right", "top")]
    # Place the most crowded points first, while there is still room around them.
    def crowding(item: tuple[str, tuple[float, float]]) -> float:
        x, y = ax.transData.transform(item[1])
        return -sum(1 for ox, oy in points.values() if np.hypot(*(ax.transData.transform((ox, oy)) - (x, y))) < 60)

    for label, (x, y) in sorted(points.items(), key=crowding):
        best = None
        for dx, dy, ha, va in offsets:
            text = ax.annotate(_wrap(label, 36), (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=8,
                               ha=ha, va=va)
            text.set_in_layout(False)  # placed by measurement: the layout must not move the axes after
            box = text.get_window_extent(renderer)
            inside = axes_box.x0 <= box.x0 and box.x1 <= axes_box.x1 and axes_box.y0 <= box.y0 and box.y1 <= axes_box.y1
            clash = any(_boxes_overlap(box, b) for b in placed) or any(
                _boxes_overlap(box, m, 0) for m in marker_boxes)
            if inside and not clash:
                best = (text, box)
                break
            text.remove()
        if best is None:  # nowhere free: the first position, connected to its point by a line
            text = ax.annotate(_wrap(label, 36), (x, y), textcoords="offset points", xytext=(7, 22), fontsize=8,
                               ha="left", va="bottom", arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.5})
            text.set_in_layout(False)
            best = (text, text.get_window_extent(renderer))
        placed.append(best[1])


def bias_heatmaps(profile: Mapping[str, Mapping[str, Mapping[str, float]]], title: str = "") -> Figure:
    """Groups x value dimensions heatmaps of preferred-group counts: matched and mismatched.

    ``profile``: {"matched"|"mismatched": {dimension: {"female": n, "male": n, "18-29": n, ...}}}.
    Both panels share one colour scale (0 to the largest count of either), stated on the one
    colour bar; cell numbers are large and switch to white on dark cells.
    """
    kinds = [k for k in ("matched", "mismatched") if k in profile]
    fig, axes = plt.subplots(1, max(1, len(kinds)), figsize=(5.2 * max(1, len(kinds)) + 1.2, 4.2), dpi=_DPI,
                             squeeze=False, layout="constrained")
    group_names = [g for _, g in GROUPS]
    row_labels = [f"{fam}: {g}" for fam, g in GROUPS]
    matrices = {}
    for kind in kinds:
        dims = [d for d in DIMENSIONS if d in profile[kind]]
        if dims:
            matrices[kind] = (dims, np.array([[float(profile[kind][d].get(g, 0.0)) for d in dims] for g in group_names]))
    top = max([float(m.max()) for _, m in matrices.values()] + [1.0])
    cmap = plt.get_cmap("Blues")
    image = None
    for ax, kind in zip(axes[0], kinds):
        ax.set_title(f"{kind} questions", fontsize=9)
        if kind not in matrices:
            ax.text(0.5, 0.5, "no question here has sex and age\nbreakdowns of the human answers", ha="center",
                    va="center", fontsize=9, transform=ax.transAxes)
            ax.set_axis_off()
            continue
        dims, matrix = matrices[kind]
        image = ax.imshow(matrix, aspect="auto", cmap=cmap, vmin=0, vmax=top)
        ax.set_xticks(range(len(dims)), dims, fontsize=8)
        ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                value = matrix[i, j]
                ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=10,
                        color="white" if value > 0.55 * top else "black")
    if image is not None:
        bar = fig.colorbar(image, ax=list(axes[0]), fraction=0.04, pad=0.02)
        bar.set_label("questions (one scale for both panels;\nties split, hence halves)", fontsize=8)
    elif not kinds:
        axes[0][0].set_axis_off()
    fig.suptitle(_wrap(title or "Preference bias: whose answers the model's preferred option is most typical of", 90),
                 fontsize=10)
    return fig


def insensitivity_radar(per_run: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Figure:
    """Share of responses flagged on each of the six insensitivity dimensions, one polygon per run.

    A dimension nothing was decided on (rate None) is undefined, not zero: the polygon joins
    the defined dimensions only, the undefined one is marked "n/a" on its axis, and with one
    run each axis label says how many responses its rate rests on.
    """
    dims = INSENSITIVITY_DIMENSIONS
    angles = np.linspace(0, 2 * np.pi, len(dims), endpoint=False)
    fig = plt.figure(figsize=(6, 5.6), dpi=_DPI, layout="constrained")
    ax = fig.add_subplot(polar=True)
    undefined_anywhere: set[str] = set()
    for run, summary in per_run.items():
        values = [summary.get(d, {}).get("rate") for d in dims]
        defined = [i for i, v in enumerate(values) if v is not None and np.isfinite(float(v))]
        undefined_anywhere.update(d for i, d in enumerate(dims) if i not in defined)
        if not defined:
            continue
        a = [angles[i] for i in defined] + [angles[defined[0]]]
        v = [float(values[i]) for i in defined] + [float(values[defined[0]])]
        line, = ax.plot(a, v, marker="o", markersize=4, label=_wrap(run, 40))
        ax.fill(a, v, alpha=0.15, color=line.get_color())
    labels = []
    only = next(iter(per_run.values())) if len(per_run) == 1 else None
    for d in dims:
        label = d
        if only is not None:
            decided = only.get(d, {}).get("decided")
            label = f"{d}\nn/a" if d in undefined_anywhere else f"{d}\nn={decided}" if decided is not None else d
        elif d in undefined_anywhere:
            label = f"{d}\n(n/a in a run)"
        labels.append(label)
    ax.set_xticks(angles, labels, fontsize=8)
    ax.tick_params(axis="x", pad=10)
    ax.set_ylim(0, 1)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0], ["0.25", "0.5", "0.75", ""], fontsize=7, color="grey")  # 1: the rim
    ax.set_rlabel_position(90)  # between QC (60 degrees) and RP (120 degrees), on no dimension's line
    for d in undefined_anywhere:
        ax.plot([angles[dims.index(d)]] * 2, [0, 1], color="lightgrey", lw=1, ls=":")
    ax.set_title("Insensitivity: share of responses flagged\n(n = responses decided; n/a = none decided)", fontsize=10)
    if len(per_run) > 1:
        _legend_below(fig, ax, ncol=1)
    return fig


def ablation_bars(distinct: Mapping[str, float], gains: Mapping[str, float] | None = None) -> Figure:
    """Mean distinct answers per question for each diversity plan, with the gain over `none`."""
    fig, ax = plt.subplots(figsize=(7, 3.8), dpi=_DPI, layout="constrained")
    plans = list(distinct)
    heights = [distinct[p] or 0 for p in plans]
    bars = ax.bar(plans, heights, color="tab:green")
    for bar, plan in zip(bars, plans):
        gain = (gains or {}).get(plan)
        if gain is not None and plan != "none":
            ax.annotate(f"{gain:+.1f}%", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    ax.set_ylim(0, max(heights + [1]) * 1.18)
    ax.set_ylabel("distinct answers per question")
    ax.set_title("Diversity ablation: distinct answers per question (labels: gain over plan 'none')", fontsize=10)
    return fig


def layout_problems(fig: Figure) -> list[str]:
    """Texts of ``fig`` that leave the canvas or overlap another text, as readable lines (empty:
    the figure is clean). The tests run it on every figure; it draws the figure to measure."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    canvas = fig.bbox
    hidden = set()  # texts that exist but are not drawn: axes switched off, ticks outside the view
    for ax in fig.axes:
        if not ax.axison:
            hidden.update(id(t) for axis in (ax.xaxis, ax.yaxis) for t in axis.findobj(Text))
            continue
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            span = (high - low) or 1.0
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                loc = tick.get_loc()
                if loc is None or not low - 1e-9 * span <= loc <= high + 1e-9 * span:
                    hidden.update({id(tick.label1), id(tick.label2)})
    texts = []
    for t in fig.findobj(Text):
        if id(t) in hidden or not t.get_visible() or not t.get_text().strip():
            continue
        box = t.get_window_extent(renderer)
        if box.width <= 0 or box.height <= 0:
            continue
        texts.append((t.get_text().replace("\n", " "), box))
    problems = []
    for label, box in texts:
        if box.x0 < canvas.x0 - 1 or box.x1 > canvas.x1 + 1 or box.y0 < canvas.y0 - 1 or box.y1 > canvas.y1 + 1:
            problems.append(f"{label!r} leaves the canvas ({box.x0:.0f},{box.y0:.0f})-({box.x1:.0f},{box.y1:.0f})")
    for (la, a), (lb, b) in itertools.combinations(texts, 2):
        if _boxes_overlap(a, b, pad=-1.0):
            problems.append(f"{la!r} overlaps {lb!r}")
    return problems
