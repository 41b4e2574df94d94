"""paired_comparison: two runs on the same questions compared question by question.

Golden values by hand and with numpy; the interval's coverage by seeded simulation on the US
config's real human distributions (questions drawn from the dataset, the target their mean over
all of it); batteries resampled together.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import entropy

from culturesim.metrics.cultural_alignment import paired_comparison
from test_metric_mean_intervals import human_questions


def test_golden_values() -> None:
    a, b = [0.5, 0.2, np.nan, 0.9], [0.1, 0.4, 0.3, 0.6]
    r = paired_comparison(a, b, bootstrap_samples=0)
    assert r["estimate"] == pytest.approx(((0.5 - 0.1) + (0.2 - 0.4) + (0.9 - 0.6)) / 3)  # the NaN question dropped
    assert r["n_questions"] == 3 and r["ci_low"] is None
    ratio = paired_comparison([2.0, 3.0, 1.0], [1.0, 2.0, 1.0], kind="ratio", bootstrap_samples=200)
    assert ratio["estimate"] == pytest.approx(6.0 / 4.0)
    assert ratio["ci_low"] <= ratio["estimate"] <= ratio["ci_high"]
    # one battery holding every question: nothing to resample, no interval
    one = paired_comparison(a, b, clusters=["x"] * 4, bootstrap_samples=200)
    assert one["n_clusters"] == 1 and one["ci_low"] is None


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="same length"):
        paired_comparison([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="kind 'sum'"):
        paired_comparison([1.0], [1.0], kind="sum")
    with pytest.raises(ValueError, match="clusters has 1 labels for 2"):
        paired_comparison([1.0, 2.0], [1.0, 2.0], clusters=["a"])


def test_batteries_widen_the_interval_when_they_move_together() -> None:
    rng = np.random.default_rng(0)
    shift = np.repeat(rng.normal(0, 1, 10), 6)  # 10 batteries of 6 questions sharing a shift
    a = shift + rng.normal(0, 0.1, 60)
    b = np.zeros(60)
    alone = paired_comparison(a, b, seed=1)
    grouped = paired_comparison(a, b, clusters=np.repeat(np.arange(10), 6).tolist(), seed=1)
    assert (grouped["ci_high"] - grouped["ci_low"]) > 1.8 * (alone["ci_high"] - alone["ci_low"])


def test_coverage_on_real_human_distributions() -> None:
    """Two 'runs' whose per-question values are functions of the real human distributions plus
    run noise; 60 questions drawn from the dataset each time; the target is the mean difference
    over every question of the dataset. Nominal 0.95; 300 replicates (SE 0.013)."""
    humans, _, _ = human_questions()
    ent = np.array([entropy(q) for q in humans])
    top = np.array([q.max() for q in humans])
    target = float(np.mean(ent - top))
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(300):
        idx = rng.choice(len(ent), 60, replace=False)
        a = ent[idx] + rng.normal(0, 0.05, 60)
        b = top[idx] + rng.normal(0, 0.05, 60)
        r = paired_comparison(a, b, bootstrap_samples=500, seed=int(rng.integers(1 << 30)))
        hits += r["ci_low"] <= target <= r["ci_high"]
    assert 0.91 <= hits / 300 <= 0.98, hits / 300
