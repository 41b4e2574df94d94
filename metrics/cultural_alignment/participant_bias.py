"""The participants' part of the smoothed KL's bias, from a per-count table instead of the jackknife.

With additive smoothing eps, KL(model || human) of one question is

    s * sum_o (m_o + eps) log(m_o + eps) + log s  -  sum_o s (m_o + eps) log(h~_o),   s = 1 / (1 + k eps),

and only the first sum is non-linear in the model's shares. Its plug-in from P participants
(m_o = c_o / P, c_o ~ Binomial(P, mu_o)) is biased upwards, most at small P. The participant
jackknife removes the 1/P term of that bias, but (x + eps) log(x + eps) bends sharply near 0
(curvature 1 / eps at x = 0), so at P = 8 about a third of the bias was left: the bias-corrected
mean sat 0.3 standard deviations above the truth at 200 questions (the card's table).

Here each count c gets a value T_P(c) chosen once per P so that E[T_P(c)] is as close as it can be
to (mu + eps) log(mu + eps) for every mu in [0, 1] (least squares over a grid, denser near 0,
ridged towards the plug-in so that its variance stays near the jackknife's; T(0) and T(P) are the
plug-in's, so a collapsed model stays exact), the idea of Paninski's best-upper-bound entropy
estimator (2003). It is used up to MAX_TABLE_PARTICIPANTS, where it was measured to beat the
jackknife. A count table needs each participant's single answer (a multinomial count);
multiple-choice questions keep the jackknife.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.stats import binom

from .schema import Data

__all__ = ["count_table", "ridged_fit", "table_bias_kl", "MAX_TABLE_PARTICIPANTS"]

#: The table is used up to this many participants and the jackknife above. Measured (bias of the
#: bias-corrected mean in units of its SD, 200 real GSS questions, near and far models, two seeds,
#: 200 replicates each): the jackknife leaves +1.2..+2.2 at P = 4, +0.35..+0.52 at 8, -0.06..+0.22
#: at 10-12; the table +0.2..+0.5 at 4, -0.18..+0.04 at 6-10, but +0.14..+0.75 at 16-20, where a
#: fixed ridge pulls ever more coefficients towards the plug-in.
MAX_TABLE_PARTICIPANTS = 10

# The fit: 400 shares on [0, 0.05] (where the function bends) and 400 on [0.05, 1]; the ridge
# towards the plug-in table keeps the table's variance near the plug-in's (unridged, a share's
# standard deviation doubles at P = 8). RIDGE was chosen on the measurements above: 0.3 and 1
# over-correct (-0.28 and -0.26 at P = 8, near models), 3 under-corrects (+0.16), 2 leaves -0.08..+0.04.
_GRID = np.concatenate([np.linspace(0.0, 0.05, 400), np.linspace(0.05, 1.0, 400)])
RIDGE = 2.0


def _h(x: np.ndarray, eps: float) -> np.ndarray:
    return (x + eps) * np.log(x + eps)


@lru_cache(maxsize=256)
def count_table(participants: int, eps: float) -> np.ndarray:
    """(P + 1,) T_P(c), c = 0..P: least squares E[T_P(c)] ~ (mu + eps) log(mu + eps) over the
    grid, ridged towards the plug-in values (c / P + eps) log(c / P + eps)."""
    if participants < 2:
        raise ValueError(f"count_table needs at least 2 participants, got {participants}: with fewer there is no "
                         "bias to estimate (the metric gives such questions no bias-corrected value)")
    counts = np.arange(participants + 1)
    plug_in = _h(counts / participants, eps)
    # T(0) and T(P) are the plug-in's, so a share of exactly 0 or 1 (an option nobody would pick,
    # a collapsed model) stays unbiased; the other counts are fitted
    inner = counts[1:-1]
    pmf = binom.pmf(counts[None, :], participants, _GRID[:, None])
    target = _h(_GRID, eps) - pmf[:, 0] * plug_in[0] - pmf[:, -1] * plug_in[-1]
    table = plug_in.copy()
    table[1:-1] = ridged_fit(pmf[:, 1:-1], target, plug_in[1:-1], np.full(len(inner), RIDGE))
    return table


def ridged_fit(pmf: np.ndarray, target: np.ndarray, prior: np.ndarray, penalty: np.ndarray,
               row_weight: np.ndarray | None = None) -> np.ndarray:
    """The per-count values c minimising sum_g w_g^2 (sum_x pmf[g, x] c_x - target_g)^2 +
    sum_x penalty_x (c_x - prior_x)^2: a count table whose expectation at each share g of a grid is
    as close as it can be to the target there, each value held towards a prior by its penalty (what
    keeps the table's variance down). Shared by this module's participant table and the survey's
    (survey._count_table)."""
    w = np.ones(len(target)) if row_weight is None else row_weight
    root = np.sqrt(penalty)
    a = np.vstack([pmf * w[:, None], np.diag(root)])
    y = np.concatenate([target * w, root * prior])
    return np.linalg.lstsq(a, y, rcond=None)[0]


def table_bias_kl(data: Data, eps: float, single: np.ndarray) -> np.ndarray:
    """Per question: plug-in minus table value of the smoothed KL's non-linear model part, i.e. the
    participants' share of the KL's bias; NaN where it does not apply (no participants, a
    multiple-choice question, fewer than 2 or more than MAX_TABLE_PARTICIPANTS answers).
    ``single``: bool (n,), questions whose every participant gave one answer."""
    out = np.full(data.n, np.nan)
    if data.answers is None:
        return out
    lengths = data.answers.lengths
    kmax = data.model.shape[1]
    valid = np.arange(kmax)[None, :] < data.ks[:, None]
    usable = single & (lengths >= 2) & (lengths <= MAX_TABLE_PARTICIPANTS)
    for p in np.unique(lengths[usable]):
        rows = np.flatnonzero(usable & (lengths == p))
        counts = data.model[rows] * p
        whole = np.rint(counts)
        ok = np.all(np.abs(counts - whole) < 1e-6, axis=1)
        rows, whole = rows[ok], whole[ok].astype(np.int64)
        if len(rows) == 0:
            continue
        table = count_table(int(p), float(eps))
        terms = _h(whole / p, eps) - table[np.clip(whole, 0, p)]
        scale = 1.0 / (1.0 + data.ks[rows] * eps)
        out[rows] = scale * np.where(valid[rows], terms, 0.0).sum(axis=1)
    return out
