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


#: Sample sizes at which the interval of a mean's worth-N is searched (log-spaced, 1 to 10^6).
_SEARCH = np.exp(np.linspace(0.0, math.log(1e6), 481))


def worth_mean(curve: np.ndarray, noise: np.ndarray, sel: np.ndarray, ks: np.ndarray, estimate, se,
               quantile: float) -> dict:
    """Worth-N of a mean over the questions ``sel``: the n with mean floor_i(n) = ``estimate``,
    the model's KL to the survey's distribution less its participants' bias (not less the
    survey's own bias: n counts draws from that distribution, so m respondents drawn from the
    survey's respondents are worth m; an independent sample of m from the population is worth
    1 / (1/m + 1/n_eff), within 10 % of m for m up to n_eff / 10). Infinite (None,
    ``worth_n_infinite`` True) when the estimate is within the survey's own noise (at or below
    the mean of ``noise``).

    The interval holds every n for which the estimate is within ``quantile`` x sqrt(se^2 +
    sd_n^2) of mean floor(n): se the estimate's standard error, sd_n the spread of the mean KL
    of an n-respondent sample itself (2 n KL_i ~ chi-square with k_i - 1 degrees of freedom:
    Var = (k_i - 1) / (2 n^2)). So a model that is m real respondents gets an interval that
    holds m at the nominal rate, not just one for its own fixed KL; ``worth_n_ci_high`` None
    when the interval reaches the survey's noise or 10^6."""
    out = {"worth_n": None, "worth_n_ci_low": None, "worth_n_ci_high": None, "worth_n_infinite": None}
    if estimate is None or not sel.any():
        return out
    mean_curve = curve[sel].mean(axis=0, keepdims=True)
    noise_mean = float(noise[sel].mean()) if np.isfinite(noise[sel]).all() else 0.0
    if estimate <= noise_mean:
        n = math.inf
    else:
        n = float(solve_worth(mean_curve, np.array([estimate]))[0])
    out["worth_n_infinite"] = n == math.inf
    out["worth_n"] = n if math.isfinite(n) else None
    if se is None or not math.isfinite(se):
        return out
    floor_n = _curve_at(np.repeat(mean_curve, len(_SEARCH), axis=0), _SEARCH)
    sd_n = np.sqrt(float((ks[sel] - 1.0).sum()) / 2.0) / _SEARCH / float(sel.sum())
    inside = np.abs(estimate - floor_n) <= quantile * np.sqrt(se * se + sd_n * sd_n)
    if not inside.any():  # the grid is too coarse for a tiny interval: the point itself
        out["worth_n_ci_low"] = out["worth_n_ci_high"] = out["worth_n"]
        return out
    j = np.flatnonzero(inside)
    out["worth_n_ci_low"] = float(_SEARCH[j[0]]) if j[0] > 0 else 1.0
    top_open = j[-1] == len(_SEARCH) - 1 or floor_n[j[-1]] <= noise_mean or n == math.inf
    out["worth_n_ci_high"] = None if top_open else float(_SEARCH[j[-1]])
    return out
