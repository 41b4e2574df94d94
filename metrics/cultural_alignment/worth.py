"""Worth N respondents and the survey's own noise: what a divergence is worth in real people.

A KL of 0.21 means little on its own; "as close to the population as a random sample of 3 of
its people" does. The floor of n respondents (the expected divergence of the empirical
distribution of n people drawn from the population, ``floors.kl_floor_curve``) falls with n, so
a model's bias-corrected divergence D (unlimited participants) is worth the n that solves
floor(n) = D: a "model" that is the empirical distribution of m real respondents is worth about
m (tested by simulation on the dataset's human distributions). The survey itself is one such
sample, of n_eff = respondents / design effect people, so its own noise is floor(n_eff): a model
closer than that is within the survey's noise, worth "infinitely many" respondents, reported as
None with ``worth_n_infinite`` True. Worth-N uses KL, the one divergence whose bias-corrected
mean is unbiased at these sizes (see the card).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln

from .floors import WORTH_GRID
from .schema import Data

__all__ = ["survey_noise", "solve_worth", "worth_mean"]

_LOG_GRID = np.log(np.asarray(WORTH_GRID, dtype=np.float64))


def _curve_at(curve: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Per row: the floor curve at n (log-log interpolation on the grid; floor(last) x last / n
    beyond it; NaN where n is NaN)."""
    last = WORTH_GRID[-1]
    out = curve[:, -1] * last / np.where(np.isfinite(n), np.maximum(n, 1.0), np.nan)
    inside = np.isfinite(n) & (n < last)
    if inside.any():
        ln = np.log(np.maximum(n[inside], 1.0))
        j = np.clip(np.searchsorted(_LOG_GRID, ln, side="right") - 1, 0, len(WORTH_GRID) - 2)
        t = (ln - _LOG_GRID[j]) / (_LOG_GRID[j + 1] - _LOG_GRID[j])
        rows = np.flatnonzero(inside)
        lo, hi = np.log(np.maximum(curve[rows, j], 1e-300)), np.log(np.maximum(curve[rows, j + 1], 1e-300))
        out[inside] = np.exp(lo + t * (hi - lo))
    return out


def survey_noise(data: Data, curve: np.ndarray) -> dict[str, np.ndarray]:
    """Per question: the expected divergence of the survey's own estimate from its population,
    from n_eff = ``human_n_effective`` respondents (NaN where it is not given). KL from the exact
    floor curve; JS and Wasserstein from their large-sample forms (the survey has hundreds of
    respondents): 8 n JS divergence (nats) -> chi-square with k - 1 degrees of freedom, so
    E[JS distance] = sqrt(2 / (8 n ln 2)) Gamma(k / 2) / Gamma((k - 1) / 2); each cumulative share
    is normal with variance c (1 - c) / n, so E|gap| = sqrt(2 c (1 - c) / (pi n)) per step."""
    n_eff = data.human_n_eff if data.human_n_eff is not None else np.full(data.n, np.nan)
    ks = data.ks.astype(np.float64)
    kl = _curve_at(curve, n_eff)
    chi = np.exp(gammaln(ks / 2.0) - gammaln((ks - 1.0) / 2.0)) * math.sqrt(2.0)
    js = chi / np.sqrt(8.0 * n_eff * math.log(2.0))
    kmax = data.human.shape[1]
    cum = np.cumsum(data.human, axis=1)
    steps = np.arange(kmax)[None, :] < (data.ks - 1)[:, None]
    gap = np.where(steps, np.sqrt(2.0 * np.clip(cum * (1.0 - cum), 0.0, None) / math.pi), 0.0).sum(axis=1)
    w = np.where(data.ordinal, gap / np.sqrt(n_eff) / (ks - 1.0), np.nan)
    return {"survey_noise_kl": kl, "survey_noise_js": js, "survey_noise_wasserstein": w}


def solve_worth(curve: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per row: the n >= 1 with curve(n) = target (the curve falls with n): log-log
    interpolation on the grid, n = last x floor(last) / target beyond it, 1 where the target is
    at or above floor(1) (no better than one respondent), inf where it is <= 0, NaN where the
    target is NaN."""
    out = np.full(len(target), np.nan)
    ok = np.isfinite(target)
    out[ok & (target <= 0)] = np.inf
    last = WORTH_GRID[-1]
    beyond = ok & (target > 0) & (target < curve[:, -1])
    out[beyond] = last * curve[beyond, -1] / target[beyond]
    out[ok & (target >= curve[:, 0])] = 1.0
    rows = np.flatnonzero(ok & (target > 0) & (target < curve[:, 0]) & (target >= curve[:, -1]))
    if len(rows):
        c = curve[rows]
        # the first grid point whose floor is at or below the target
        j = np.clip((c > target[rows, None]).sum(axis=1), 1, len(WORTH_GRID) - 1)
        lo, hi = np.log(np.maximum(c[np.arange(len(rows)), j - 1], 1e-300)), np.log(np.maximum(c[np.arange(len(rows)), j], 1e-300))
        t = np.where(hi < lo, (np.log(target[rows]) - lo) / np.where(hi < lo, hi - lo, 1.0), 0.0)
        out[rows] = np.exp(_LOG_GRID[j - 1] + t * (_LOG_GRID[j] - _LOG_GRID[j - 1]))
    return out


def worth_mean(curve: np.ndarray, noise: np.ndarray, sel: np.ndarray, estimate, low, high) -> dict:
    """Worth-N of a mean over the questions ``sel``: solve mean floor_i(n) = the mean
    bias-corrected KL (``estimate``), and its interval from the interval's ends (the high end of
    the divergence gives the low end of N). Infinite (None, ``worth_n_infinite`` True) when the
    estimate is within the survey's own noise (at or below the mean of ``noise``)."""
    out = {"worth_n": None, "worth_n_ci_low": None, "worth_n_ci_high": None, "worth_n_infinite": None}
    if estimate is None or not sel.any():
        return out
    mean_curve = curve[sel].mean(axis=0, keepdims=True)
    noise_mean = float(noise[sel].mean()) if np.isfinite(noise[sel]).all() else 0.0

    def solve(d):
        if d is None:
            return None
        if d <= noise_mean:
            return math.inf
        return float(solve_worth(mean_curve, np.array([d]))[0])

    n, n_high, n_low = solve(estimate), solve(low), solve(high)
    out["worth_n_infinite"] = n == math.inf
    for key, value in (("worth_n", n), ("worth_n_ci_low", n_low), ("worth_n_ci_high", n_high)):
        out[key] = value if value is not None and math.isfinite(value) else None
    return out
