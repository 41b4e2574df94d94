"""The survey's own bias in the plug-in KL: the human distribution is an estimate too.

The reference q^ is a survey estimate of its population q from n_eff = respondents / design
effect people, so even a model that knew the population exactly would score KL(p || q^), not
KL(p || q). KL is convex in q: on average the plug-in is too high by about
sum_i p'_i q_i (1 - q_i) / (2 n_eff (q_i + eps)^2) (second-order delta method, p' the smoothed
model share, eps the smoothing). The participant jackknife cannot see this part (the survey is
fixed within a run); left in, it made kl_bc_mean 0.7-1.2 standard errors too high at 200 questions
(the card's table), more than the interval's width allows.

The delta method fails for options with few expected respondents (n_eff q < SMALL_CELL_COUNT):
-log(q^ + eps) is then far from quadratic, and at q = 0.0024 with n_eff = 400 the delta method
gave half the bias and 0.35x the variance of simulated surveys. There each option's bias and
variance come exactly from the binomial distribution of its count at q~ = (count + 1) / (n_eff + 2)
(Laplace's rule: an option no respondent chose still has a share), which simulation matched
within about 0.05 nats of bias and 10 % of variance. Used under zero_policy='smoothing' only: the
exact KL of a share that can be 0 has no finite expectation.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from .schema import Data

__all__ = ["SMALL_CELL_COUNT", "human_bias"]

#: Options with fewer expected respondents than this (n_eff x human share) get their survey bias
#: and variance from the exact binomial moments instead of the delta method.
SMALL_CELL_COUNT = 20.0

# Binomial support kept per small option: counts up to mean + _TAIL_SD sds + _TAIL_ADD (the rest
# carries under 1e-12 of the probability for means up to SMALL_CELL_COUNT).
_TAIL_SD, _TAIL_ADD = 9.0, 12


def human_bias(data: Data, p: np.ndarray, settings: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per question: (the survey's bias of the plug-in KL(p || q^), a correction to the delta-method
    variance of the human side, ``intervals.human_variance``), both 0 where ``human_n_effective``
    was not given. The bias is sum_i p'_i q^_i (1 - q^_i) / (2 n_eff (q^_i + eps)^2), options
    with q^ = 0 adding 0 (their KL is infinite under the exact policies); for options with
    n_eff q^ < SMALL_CELL_COUNT and a model share (smoothing policy only) their term is replaced
    by p'_i (E[-log(X / n + eps)] + log(q~ + eps)), X ~ Binomial(n, q~), n = round(n_eff), and
    their delta variance p'_i^2 q^ (1 - q^) / (n_eff (q^ + eps)^2) by p'_i^2 Var[log(X / n + eps)]."""
    zeros = np.zeros(data.n)
    if data.human_n_eff is None or not np.isfinite(data.human_n_eff).any():
        return zeros, zeros.copy()
    kmax = data.human.shape[1]
    valid = np.arange(kmax)[None, :] < data.ks[:, None]
    q = data.human
    n_eff = np.where(np.isfinite(data.human_n_eff), data.human_n_eff, np.nan)[:, None]
    smoothing = settings["zero_policy"] == "smoothing"
    eps = settings["smoothing"] if smoothing else 0.0
    share = (p + eps) / (1.0 + eps * data.ks)[:, None] if smoothing else p
    with np.errstate(divide="ignore", invalid="ignore"):
        delta_var = q * (1.0 - q) / (n_eff * (q + eps) ** 2)
        terms = np.where(valid & (q > 0), share * delta_var / 2.0, 0.0)
        var_fix = np.zeros_like(terms)
        if smoothing:
            small = valid & np.isfinite(n_eff) & (n_eff * q < SMALL_CELL_COUNT) & (p > 0)
            if small.any():
                rows, cols = np.nonzero(small)
                bias, var = _exact_log_moments(n_eff[rows, 0], q[rows, cols], eps)
                s = share[rows, cols]
                terms[rows, cols] = s * bias
                var_fix[rows, cols] = s * s * (var - np.where(q[rows, cols] > 0, delta_var[rows, cols], 0.0))
    bias = terms.sum(axis=1)
    fix = var_fix.sum(axis=1)
    return np.where(np.isfinite(bias), bias, 0.0), np.where(np.isfinite(fix), fix, 0.0)


def _exact_log_moments(n_eff: np.ndarray, q: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per option: (E[-log(X / n + eps)] + log(q~ + eps), Var[log(X / n + eps)]) for
    X ~ Binomial(n, q~), n = round(n_eff), q~ = (n_eff q + 1) / (n_eff + 2), over the counts that
    carry the probability (see _TAIL_SD). Options are taken in groups of similar support (counts
    up to their own mean + _TAIL_SD sds + _TAIL_ADD, rounded up to a multiple of _SUPPORT_STEP):
    most small options have means far below SMALL_CELL_COUNT and need a fraction of the longest
    support, which every option paid for when they were all one array."""
    n = np.maximum(np.round(n_eff), 1.0)
    qt = (n_eff * q + 1.0) / (n_eff + 2.0)
    mean = n * qt
    need = np.ceil(mean + _TAIL_SD * np.sqrt(mean)).astype(np.int64) + _TAIL_ADD
    bucket = -(-need // _SUPPORT_STEP)
    m1 = np.empty(len(n))
    m2 = np.empty(len(n))
    for b in np.unique(bucket).tolist():
        rows = np.flatnonzero(bucket == b)
        top = int(need[rows].max())
        m1[rows], m2[rows] = _log_moments(n[rows], qt[rows], top, eps)
    return m1 + np.log(qt + eps), np.maximum(m2 - m1 * m1, 0.0)


#: Support lengths are rounded up to a multiple of this when options are grouped (_exact_log_moments).
_SUPPORT_STEP = 8


def _log_moments(n: np.ndarray, qt: np.ndarray, top: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """(E[f(X)], E[f(X)^2]) with f(x) = -log(min(x, n) / n + eps), X ~ Binomial(n, qt), over the
    counts 0..top."""
    x = np.arange(top, dtype=np.float64)[None, :]
    nn, qq = n[:, None], qt[:, None]
    # pmf(x + 1) = pmf(x) (n - x) / (x + 1) q / (1 - q), from pmf(0) = (1 - q)^n: one running product
    # instead of three log-gamma functions per count (this runs on every small option of 100,000s)
    ratio = np.maximum(nn - x, 0.0) / (x + 1.0) * (qq / (1.0 - qq))
    pmf = np.empty((len(n), top + 1))
    pmf[:, 0] = np.exp(n * np.log1p(-qt))
    np.cumprod(ratio, axis=1, out=pmf[:, 1:])
    pmf[:, 1:] *= pmf[:, :1]
    counts = np.arange(top + 1, dtype=np.float64)[None, :]
    f = -np.log(np.minimum(counts, nn) / nn + eps)
    pf = pmf * f
    return pf.sum(axis=1), (pf * f).sum(axis=1)
