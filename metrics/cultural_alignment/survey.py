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
gave half the bias and 0.35x the variance of simulated surveys. There each option's variance comes
exactly from the binomial distribution of its count at q~ = (count + 1) / (n_eff + 2) (Laplace's
rule: an option no respondent chose still has a share), and its bias from a per-count table fitted
so that its expectation is the bias at every share from 0 to SMALL_CELL_COUNT + 15 respondents
(Laplace's share gave an option nobody chose a bias of 0.12 nats where the truth is 0). Used under zero_policy='smoothing' only: the
exact KL of a share that can be 0 has no finite expectation.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import gammaln

from .participant_bias import ridged_fit
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
    by p'_i c(n_eff q^), c the per-count table of the survey's size (_count_table; below
    _TABLE_MIN_N effective respondents Laplace's E[-log(X / n + eps)] + log(q~ + eps),
    X ~ Binomial(n, q~), n = round(n_eff)), and their delta variance
    p'_i^2 q^ (1 - q^) / (n_eff (q^ + eps)^2) by p'_i^2 Var[log(X / n + eps)]."""
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
                tab = n_eff[rows, 0] >= _TABLE_MIN_N
                bias[tab] = _table_bias(n_eff[rows, 0][tab], q[rows, cols][tab], eps)
                s = share[rows, cols]
                terms[rows, cols] = s * bias
                var_fix[rows, cols] = s * s * (var - np.where(q[rows, cols] > 0, delta_var[rows, cols], 0.0))
    bias = terms.sum(axis=1)
    fix = var_fix.sum(axis=1)
    return np.where(np.isfinite(bias), bias, 0.0), np.where(np.isfinite(fix), fix, 0.0)


#: Counts below this get their survey bias from a fitted per-count table (_count_table); from it on,
#: the Laplace moments are unbiased within 0.002 nats and the table keeps them.
_TABLE_COUNTS = int(SMALL_CELL_COUNT)

#: Surveys of fewer effective respondents keep the Laplace moments: a few counts cannot carry a
#: table (at n_eff = 30 it swung between -0.06 and 2.0 nats from one count to the next).
_TABLE_MIN_N = 50.0

#: The weight of each count's spread around the Laplace value against the squared bias when the table
#: is fitted (see _count_table): 0.1 left a bias of at most 0.02 nats at n_eff = 1,000 (0.1 at 400)
#: for 2x the Laplace moments' spread; 0.01 halved the bias for 3-5x the spread.
_TABLE_SPREAD_WEIGHT = 0.1


def _table_bias(n_eff: np.ndarray, q: np.ndarray, eps: float) -> np.ndarray:
    """Per small option: the survey's bias of -log(q^ + eps) from its count x = n_eff q^, read off
    the per-count table of its n_eff (linear between whole counts)."""
    out = np.empty(len(q))
    x = np.clip(n_eff * q, 0.0, _TABLE_COUNTS - 1.0)
    keys = _table_keys(n_eff)
    for key in np.unique(keys).tolist():
        rows = np.flatnonzero(keys == key)
        table = _count_table(key, float(eps))
        out[rows] = np.interp(x[rows], np.arange(len(table)), table)
    return out


def _table_keys(n_eff: np.ndarray) -> np.ndarray:
    """int (options,): the sample size whose table each option reads: its n_eff (rounded) to 200,
    above it on a 1 % geometric grid (the table changes by under 0.001 nats there), so a survey of
    100,000 questions with as many sizes fits a few hundred tables, not one per question."""
    n = np.maximum(np.rint(n_eff), 1.0)
    grid = np.rint(200.0 * 1.01 ** np.rint(np.log(np.maximum(n, 200.0) / 200.0) / math.log(1.01)))
    return np.where(n <= 200, n, grid).astype(np.int64)


@functools.lru_cache(maxsize=4096)
def _count_table(n: int, eps: float) -> np.ndarray:
    """c(x), x = 0.._TABLE_COUNTS - 1: the survey bias to subtract for an option seen x times out of n.

    The bias of -log(q^ + eps) is b(q) = E[-log(X / n + eps)] + log(q + eps), X ~ Binomial(n, q):
    0 at q = 0, about 0.12 nats at n q = 1-2 (n = 1,000), falling after. Evaluated at Laplace's
    q~ = (x + 1) / (n + 2), it over-corrected an option nobody in the survey chose by the whole 0.12
    (a collapsed model on such an option: kl_bc_mean 0.2-0.3 standard errors too low). Here c is
    fitted so that E[c(X)] is as close as it can be to b(q) over n q in [0, _TABLE_COUNTS + 15] (q = 0
    exact), each count's departure from the Laplace value weighted by its probability x
    _TABLE_SPREAD_WEIGHT (the variance it adds); counts from _TABLE_COUNTS on keep the Laplace values."""
    top = 4 * _TABLE_COUNTS
    counts = np.arange(top + 1, dtype=np.float64)
    f = -np.log(np.minimum(counts, n) / n + eps)

    def pmf(qs: np.ndarray) -> np.ndarray:
        # the binomial pmf from log-gamma by hand: scipy.stats.binom.pmf gives the same tables (within
        # 2e-11) but took 7x the CPU (0.79 s against 0.11 s for 260 tables), which a survey of
        # 100,000 questions with many sizes would pay in its point estimates
        qs = np.clip(qs, 0.0, 1.0)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            logp = (gammaln(n + 1.0) - gammaln(counts + 1.0) - gammaln(np.maximum(n - counts, 0.0) + 1.0)
                    + counts * np.log(qs) + (n - counts) * np.log1p(-qs))
        out = np.where(counts <= n, np.exp(logp), 0.0)
        out[:, 0] = (1.0 - qs[:, 0]) ** n
        return np.where(np.isfinite(out), out, 0.0)

    def bias(qs: np.ndarray) -> np.ndarray:
        return pmf(qs) @ f + np.log(qs + eps)

    laplace = bias((counts + 1.0) / (n + 2.0))
    grid = np.linspace(0.0, min((_TABLE_COUNTS + 15.0) / n, 1.0), 141)
    A = pmf(grid)
    weight = np.ones(len(grid))
    weight[0] = 30.0  # q = 0: exact (no survey noise, no bias)
    free = min(_TABLE_COUNTS, n + 1)
    target = bias(grid) - A[:, free:] @ laplace[free:]
    occupancy = A[:, :free].sum(axis=0)
    table = laplace[:_TABLE_COUNTS].copy()
    table[:free] = ridged_fit(A[:, :free], target, laplace[:free], _TABLE_SPREAD_WEIGHT * occupancy, weight)
    return table


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
