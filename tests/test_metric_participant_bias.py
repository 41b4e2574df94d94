"""The count table behind the bias-corrected KL at few participants (metric 3.0.1, issue 23).

Checked independently: the table's expectation under scipy's binomial against the smoothed term it
estimates, at every share; and, by seeded simulation on real GSS distributions, the bias of
``kl_bc_mean`` at 8 participants, where the jackknife alone left +0.35..+0.52 of its SD.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from culturesim.metrics.cultural_alignment.participant_bias import MAX_TABLE_PARTICIPANTS, count_table
from test_metric_mean_intervals import simulate

EPS = 1e-3


def h(x):
    return (x + EPS) * np.log(x + EPS)


def jackknife_table(P: int) -> np.ndarray:
    """The participant jackknife of the same term, written out per count (delete one participant)."""
    c = np.arange(P + 1)
    drop_one = np.where(c > 0, h(np.maximum(c - 1, 0) / (P - 1)), 0.0)
    drop_other = np.where(c < P, h(np.minimum(c, P - 1) / (P - 1)), 0.0)
    return P * h(c / P) - (P - 1) / P * (c * drop_one + (P - c) * drop_other)


@pytest.mark.parametrize("P", [3, 5, 8, 10])
def test_the_table_is_less_biased_than_the_jackknife_and_exact_at_the_ends(P: int) -> None:
    mu = np.linspace(0.0, 1.0, 2001)
    pmf = binom.pmf(np.arange(P + 1)[None, :], P, mu[:, None])
    table = count_table(P, EPS)
    bias_table = pmf @ table - h(mu)
    bias_jack = pmf @ jackknife_table(P) - h(mu)
    assert np.abs(bias_table).mean() < 0.75 * np.abs(bias_jack).mean()
    # a share of exactly 0 or 1 (an option nobody picks, a collapsed model) is estimated exactly
    assert table[0] == pytest.approx(h(0.0), abs=1e-15) and table[-1] == pytest.approx(h(1.0), abs=1e-15)
    # the ridge keeps the variance near that of the jackknife it replaces
    sd = lambda t: np.sqrt(np.maximum(pmf @ t**2 - (pmf @ t) ** 2, 0.0)).mean()  # noqa: E731
    assert sd(table) < 1.2 * sd(jackknife_table(P))


def test_few_participants_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 participants"):
        count_table(1, EPS)
    assert MAX_TABLE_PARTICIPANTS >= 8


@pytest.mark.parametrize("kind", ["near", "far", "collapsed"])
def test_the_corrected_kl_mean_is_unbiased_at_eight_participants(kind: str) -> None:
    # 200 real GSS questions, the survey sampled too; 200 replicates (Monte Carlo SE of the ratio 0.07)
    r = simulate(200, 8, kind, replicates=200, seed=3)
    assert abs(r["kl_bias_sd"]) <= 0.25, r


def test_a_collapsed_model_s_kl_interval_takes_z() -> None:
    # Welch-Satterthwaite: a collapsed model has no participant variance, so the KL mean interval's
    # quantile is the normal one (t(7) made it 1.57x the spread at 30 questions x 8 participants)
    from culturesim.metrics.cultural_alignment import compute_alignment

    refs = [[0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.4], [0.1, 0.6, 0.3]]
    r = compute_alignment(predictions=[[0] * 8, [2] * 8, [1] * 8, [1] * 8], references=refs,
                          human_n_effective=[400, 300, 500, 200], bootstrap_samples=0)
    half = (r["kl_participant_ci_high"] - r["kl_participant_ci_low"]) / 2
    assert r["kl_participant_ci_low"] > 0 and half / r["kl_participant_se"] == pytest.approx(1.959964, rel=1e-5)
    # a model with participant noise keeps Student t, its quantile above z
    noisy = compute_alignment(predictions=[[0, 1, 0, 2, 0, 0, 1, 0], [2, 2, 1, 0, 2, 2, 2, 1], [1, 0, 1, 1, 0, 1, 1, 1],
                                           [1, 2, 1, 1, 0, 1, 2, 1]], references=refs,
                              human_n_effective=[400, 300, 500, 200], bootstrap_samples=0)
    upper = noisy["kl_participant_ci_high"] - noisy["kl_bc_mean"]  # the lower end may be cut at 0
    assert upper / noisy["kl_participant_se"] > 2.0
