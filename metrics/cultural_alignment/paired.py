"""Two runs on the same questions, compared question by question (plan A against plan B, one
estimator against another).

Why paired: two runs' own intervals overlap even when one is better on nearly every question,
because most of each interval is the questions' spread, which both runs share. Resampling the
questions together (a battery's questions together, as the metric's question bootstrap does)
keeps that shared part out of the difference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["paired_comparison"]

KINDS = ("difference", "ratio")


def paired_comparison(a: Sequence[float], b: Sequence[float], clusters: Sequence[object] | None = None,
                      kind: str = "difference", bootstrap_samples: int = 1000, confidence: float = 0.95,
                      seed: int = 0) -> dict[str, float | int | None]:
    """Per-question values ``a`` and ``b`` of two runs (same questions, same order; NaN where a run
    has no value, such a question is dropped from both). ``kind="difference"``: mean(a - b);
    ``"ratio"``: mean(a) / mean(b) (e.g. distinct answers of a plan over ``none``'s). The interval
    is a percentile bootstrap that draws clusters of questions (``clusters``: a label per
    question, e.g. the dataset's battery; None: each question its own) with replacement.
    Returns estimate, ci_low, ci_high, n_questions, n_clusters; None where undefined."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence {confidence!r} must be between 0 and 1 (e.g. 0.95)")
    if bootstrap_samples < 0:
        raise ValueError(f"bootstrap_samples {bootstrap_samples!r} must be 0 (no interval) or more")
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"a and b must be two lists of the same length (one value per question); got {x.shape} and "
                         f"{y.shape}")
    labels = list(range(len(x))) if clusters is None else list(clusters)
    if len(labels) != len(x):
        raise ValueError(f"clusters has {len(labels)} labels for {len(x)} questions; give one per question or None")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    labels = [lab if lab is not None else ("question", i) for i, (lab, k) in enumerate(zip(labels, keep)) if k]
    empty: dict[str, float | int | None] = {"estimate": None, "ci_low": None, "ci_high": None, "n_questions": 0,
                                             "n_clusters": 0}
    if len(x) == 0:
        return empty
    codes = np.unique(np.array([repr(lab) for lab in labels]), return_inverse=True)[1]
    n_clusters = int(codes.max()) + 1

    def stat(sa: np.ndarray, sb: np.ndarray, count: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (sa - sb) / count if kind == "difference" else sa / sb

    # per cluster sums, then each replicate's sums as (counts of each cluster drawn) @ sums
    sums = np.zeros((n_clusters, 3))
    np.add.at(sums, codes, np.column_stack([x, y, np.ones_like(x)]))
    estimate = float(stat(sums[:, 0].sum(), sums[:, 1].sum(), sums[:, 2].sum()))
    out: dict[str, float | int | None] = {"estimate": estimate if np.isfinite(estimate) else None, "ci_low": None,
                                           "ci_high": None, "n_questions": int(len(x)), "n_clusters": n_clusters}
    if bootstrap_samples == 0 or n_clusters < 2:
        return out
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_clusters, size=(bootstrap_samples, n_clusters))
    counts = np.zeros((bootstrap_samples, n_clusters))
    np.add.at(counts, (np.repeat(np.arange(bootstrap_samples), n_clusters), draws.ravel()), 1.0)
    reps = counts @ sums
    values = stat(reps[:, 0], reps[:, 1], reps[:, 2])
    values = values[np.isfinite(values)]
    if len(values):
        tail = (1.0 - confidence) / 2.0 * 100.0
        low, high = np.percentile(values, [tail, 100.0 - tail])
        out["ci_low"], out["ci_high"] = float(low), float(high)
    return out
