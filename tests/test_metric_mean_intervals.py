"""Seeded simulation of the metric 3.0 mean intervals on real human distributions (issue 23).

Each case takes Q human distributions from the dataset (the US config) as the populations, a model
population p per question (``near``: Dirichlet(50 q), close to the humans; ``far``: Dirichlet(1);
``collapsed``: every participant gives one answer, a random option) and replicates the whole
measurement: P participants drawn from p, and the survey itself, a multinomial sample of n_eff =
human_n / DESIGN_EFFECT respondents from q (the reference is an estimate too). Per case it reports

- the coverage of the participant interval of the mean: for KL of ``kl_bc_mean`` against the
  divergence with unlimited participants from the population, sum KL(p || q) / Q (scipy); for JS
  and Wasserstein of the plug-in mean against its own expectation (the mean over replicates);
- the width ratio: the interval's mean width over the estimator's actual 95% spread (2 x 1.96 x
  its standard deviation over replicates);
- the bias of ``kl_bc_mean`` in units of its standard deviation.

``python tests/test_metric_mean_intervals.py`` prints the card's table for the full grid
Q in {10, 30, 200} x P in {8, 20, 100} x {near, far, collapsed}; the default test runs two cases.
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy.stats import entropy

from culturesim.metrics.cultural_alignment import compute_alignment

ROOT = Path(__file__).resolve().parents[1]
DESIGN_EFFECT = 2.5
EPS = 1e-3


def human_questions() -> tuple[list[np.ndarray], list[bool], list[int]]:
    """The US config's human distributions, ordinal flags and respondent counts."""
    path = sorted(glob.glob(str(ROOT / "dataset_builder" / "dataset" / "data" / "US-*.parquet")))[0]
    t = pq.read_table(path, columns=["human_distribution", "ordinal", "human_n"]).to_pydict()
    return [np.asarray(h, dtype=float) for h in t["human_distribution"]], t["ordinal"], t["human_n"]


def model_truth(q: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    k = len(q)
    if kind == "near":
        return rng.dirichlet(50 * q + 1e-3)
    if kind == "far":
        return rng.dirichlet(np.ones(k))
    p = np.zeros(k)
    p[rng.integers(k)] = 1.0
    return p


def smoothed_kl(p: np.ndarray, q: np.ndarray) -> float:
    k = len(q)
    return float(entropy((p + EPS) / (1 + k * EPS), (q + EPS) / (1 + k * EPS)))


def simulate(Q: int, P: int, kind: str, replicates: int, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng([seed, Q, P, len(kind)])
    humans, ordinal, human_n = human_questions()
    idx = rng.choice(len(humans), Q, replace=False)
    qs = [humans[i] for i in idx]
    ords = [bool(ordinal[i]) for i in idx]
    n_eff = [max(1.0, human_n[i] / DESIGN_EFFECT) for i in idx]
    ps = [model_truth(q, kind, rng) for q in qs]
    kl_truth = float(np.mean([smoothed_kl(p, q) for p, q in zip(ps, qs)]))
    rows = {name: [] for name in ("kl", "kl_lo", "kl_hi", "js", "js_lo", "js_hi", "w", "w_lo", "w_hi")}
    for _ in range(replicates):
        preds = [rng.choice(len(p), size=P, p=p).tolist() for p in ps]
        refs = []
        for q, n in zip(qs, n_eff):
            c = rng.multinomial(int(round(n)), q)
            refs.append((c / c.sum()).tolist())
        r = compute_alignment(predictions=preds, references=refs, ordinal=ords, human_n_effective=n_eff,
                              bootstrap_samples=0, seed=int(rng.integers(1 << 30)))
        for stat, key in (("kl", "kl_bc_mean"), ("js", "js_mean"), ("w", "wasserstein_mean")):
            name = "wasserstein" if stat == "w" else stat
            rows[stat].append(r[key])
            rows[f"{stat}_lo"].append(r[f"{name}_participant_ci_low"])
            rows[f"{stat}_hi"].append(r[f"{name}_participant_ci_high"])
    out: dict[str, float] = {}
    for stat in ("kl", "js", "w"):
        est = np.asarray(rows[stat], dtype=float)
        lo, hi = np.asarray(rows[f"{stat}_lo"], dtype=float), np.asarray(rows[f"{stat}_hi"], dtype=float)
        if not np.isfinite(est).all():
            continue
        target = kl_truth if stat == "kl" else float(est.mean())
        sd = float(est.std(ddof=1))
        spread = 2 * 1.959964 * sd
        out[f"{stat}_coverage"] = float(np.mean((lo <= target + 1e-12) & (target - 1e-12 <= hi)))
        out[f"{stat}_width_ratio"] = float(np.mean(hi - lo) / spread) if spread > 0 else float("nan")
        out[f"{stat}_width"] = float(np.mean(hi - lo))
        if stat == "kl":
            out["kl_bias_sd"] = (float(est.mean()) - target) / sd if sd > 0 else 0.0
    return out


@pytest.mark.parametrize("Q,P,kind", [(30, 20, "near"), (30, 20, "far"), (30, 8, "far"), (30, 8, "collapsed")])
def test_mean_interval_covers_and_is_as_narrow_as_the_spread(Q: int, P: int, kind: str) -> None:
    """Coverage at least 0.88 over 80 replicates (0.93 nominal less two standard errors) and a
    width within 1.5x of the estimator's actual spread; the bias-corrected KL mean within 0.5 of
    its standard deviation (the full grid, with more replicates, is the card's table)."""
    r = simulate(Q, P, kind, replicates=80)
    for stat in ("kl", "js", "w"):
        assert r[f"{stat}_coverage"] >= 0.88, (stat, r)
        assert r[f"{stat}_width_ratio"] <= 1.5, (stat, r)
    assert abs(r["kl_bias_sd"]) <= 0.5, r


def test_mean_interval_narrows_like_one_over_root_q() -> None:
    """30 -> 200 questions (x 6.7): the KL interval narrows by about sqrt(6.7) = 2.6, not 1."""
    a = simulate(30, 20, "far", replicates=10, seed=1)
    b = simulate(200, 20, "far", replicates=10, seed=1)
    assert 1.8 < a["kl_width"] / b["kl_width"] < 3.6, (a, b)


def main() -> None:
    print("| questions | participants | model | KL coverage | KL width / spread | KL bias / SD | JS coverage | "
          "JS width / spread | Wasserstein coverage | W width / spread |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    replicates = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    for Q in (10, 30, 200):
        for P in (8, 20, 100):
            for kind in ("near", "far", "collapsed"):
                r = simulate(Q, P, kind, replicates)
                cell = lambda key: f"{r[key]:.2f}" if key in r and np.isfinite(r[key]) else "n/a"  # noqa: E731
                print(f"| {Q} | {P} | {kind} | {cell('kl_coverage')} | {cell('kl_width_ratio')} | "
                      f"{cell('kl_bias_sd')} | {cell('js_coverage')} | {cell('js_width_ratio')} | "
                      f"{cell('w_coverage')} | {cell('w_width_ratio')} |", flush=True)


if __name__ == "__main__":
    main()
