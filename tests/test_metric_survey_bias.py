"""The survey's own bias of an option few respondents chose (metric 3.0.2, issue 23).

The reference share q^ of an option is a count out of n_eff; -log(q^ + eps) is biased upwards by
b(q) = E[-log(X / n + eps)] + log(q + eps), X ~ Binomial(n, q). Metric 3.0.1 read b at Laplace's
share (x + 1) / (n + 2), which gives an option nobody chose 0.12 nats (n = 1,000) though b(0) = 0;
3.0.2 reads a per-count table fitted over the shares. Checked here against scipy's binomial, and by
seeded simulation on real GSS human distributions: a collapsed model's kl_bc_mean, whose only bias
is the survey's.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from culturesim.metrics.cultural_alignment import compute_alignment
from culturesim.metrics.cultural_alignment.survey import _count_table

EPS = 1e-3


def exact_bias(q: float, n: int) -> float:
    x = np.arange(n + 1)
    return float((binom.pmf(x, n, q) * -np.log(x / n + EPS)).sum() + np.log(q + EPS))


def expected_correction(table: np.ndarray, q: float, n: int) -> tuple[float, float]:
    """(E, SD) of the correction read off ``table`` at X ~ Binomial(n, q); counts beyond the table
    read its last entry (they are not small options: the delta method takes them, and their
    probability is negligible at the shares tested)."""
    x = np.arange(n + 1)
    c = table[np.minimum(x, len(table) - 1)]
    pmf = binom.pmf(x, n, q)
    mean = float((pmf * c).sum())
    return mean, float(np.sqrt(max((pmf * c * c).sum() - mean * mean, 0.0)))


@pytest.mark.parametrize("n, tolerance, spread_cap", [(400, 0.1, 0.25), (1000, 0.03, 0.1), (2500, 0.01, 0.04)])
def test_table_is_unbiased_where_laplace_was_not(n, tolerance, spread_cap):
    """Over shares of 0 to 8 expected respondents: exact at q = 0; the table's expected correction
    within ``tolerance`` of the exact bias everywhere, its worst bias under half of Laplace's worst,
    and its spread (the noise it adds to one question's KL) under ``spread_cap`` nats."""
    table = _count_table(n, EPS)
    laplace = np.array([exact_bias((x + 1) / (n + 2), n) for x in range(len(table))])
    assert table[0] == pytest.approx(0.0, abs=2e-3)
    worst = worst_laplace = 0.0
    for nq in (0.0, 0.1, 0.3, 0.5, 1.0, 2.0, 4.0, 8.0):
        q = nq / n
        truth = exact_bias(q, n)
        got, spread = expected_correction(table, q, n)
        lap = expected_correction(laplace, q, n)[0]
        assert abs(got - truth) <= tolerance, (n, nq, got, truth)
        assert spread <= spread_cap, (n, nq, spread)
        worst, worst_laplace = max(worst, abs(got - truth)), max(worst_laplace, abs(lap - truth))
    assert worst < worst_laplace / 2, (worst, worst_laplace)


def test_collapsed_model_on_rare_options_is_unbiased():
    """A collapsed model (every participant gives one answer) on real GSS questions, the answer
    being each question's rarest option, options nobody chose included; the survey
    redrawn as multinomial(n_eff) each replicate. kl_bc_mean's bias is the survey's alone: within
    0.25 of its SD over 200 replicates (3.0.1, Laplace's share: about -1 SD here)."""
    import glob
    from pathlib import Path

    import pyarrow.parquet as pq

    root = Path(__file__).resolve().parents[1]
    path = sorted(glob.glob(str(root / "dataset_builder" / "dataset" / "data" / "US-*.parquet")))[0]
    t = pq.read_table(path, columns=["human_distribution", "human_n"]).to_pydict()
    rng = np.random.default_rng(7)
    # the questions whose rarest option fewer than 3 effective respondents chose (24 of 306; 7 of them
    # an option nobody chose)
    qs_all = [np.asarray(h, dtype=float) for h in t["human_distribution"]]
    idx = [i for i, q in enumerate(qs_all) if q.min() * t["human_n"][i] / 2.5 < 3]
    qs = [qs_all[i] for i in idx]
    n_eff = [max(60.0, t["human_n"][i] / 2.5) for i in idx]
    answers = [int(np.argmin(q)) for q in qs]
    assert any(q[a] == 0 for q, a in zip(qs, answers)), "the sample should hold an option nobody chose"

    def smoothed_kl(j: int, q: np.ndarray) -> float:
        k = len(q)
        p = np.zeros(k)
        p[j] = 1.0
        ps, qq = (p + EPS) / (1 + k * EPS), (q + EPS) / (1 + k * EPS)
        return float((ps * np.log(ps / qq)).sum())

    truth = float(np.mean([smoothed_kl(a, q) for a, q in zip(answers, qs)]))
    est = []
    for _ in range(200):
        refs = []
        for q, n in zip(qs, n_eff):
            c = rng.multinomial(int(round(n)), q)
            refs.append((c / c.sum()).tolist())
        r = compute_alignment(predictions=[[a] * 8 for a in answers], references=refs,
                              human_n_effective=n_eff, bootstrap_samples=0, seed=1)
        est.append(r["kl_bc_mean"])
    est = np.asarray(est)
    assert abs(est.mean() - truth) <= 0.25 * est.std(ddof=1), (est.mean(), truth, est.std(ddof=1))
