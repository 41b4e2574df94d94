"""From replicates and biases to reported intervals: percentile, bias-corrected and per-question limits.

The bootstraps (``bootstrap``) and the floors (``floors``) produce replicates and bias
estimates; this module turns them into the numbers the result reports, and into ``None``
wherever a value is undefined (never NaN or infinity). It also defines the smoothed model
distribution p~ from which the participant intervals take the plug-in's bias.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri, stdtrit

from .divergences import row_divergences
from .schema import DIVERGENCES, LN2, Data

__all__ = [
    "INTERVAL_PSEUDOCOUNT", "MIN_PARTICIPANTS", "smoothed_model", "smoothed_cumulative", "finite_or_none", "masked_mean",
    "percentile_interval", "two_sided_z", "single_choice", "jackknife_moments", "participant_limits", "human_variance", "mean_limits", "w_fold_factor",
    "per_question_intervals",
]

#: Questions answered by fewer participants than this get no bias-corrected value, participant
#: interval, normalised score or worth-N (None), and a mean over questions that contains one gets
#: no participant interval: with one participant a model that always gives the human modal
#: answer scored "better than perfect" in 2.x, and a jackknife needs two participants to delete.
MIN_PARTICIPANTS = 3

# Where each estimand lies: bias-corrected estimates and their intervals are clipped to it.
_BOUNDS = {"kl": (0.0, math.inf), "js": (0.0, 1.0), "wasserstein": (0.0, 1.0), "match_rate": (0.0, 1.0)}

#: Pseudo-count per option of the smoothed model distribution from which the participant
#: intervals estimate the plug-in's bias (Laplace's rule: (count + 1) / (P + k)), so that options
#: no participant chose still add their share of the bias; see smoothed_model.
INTERVAL_PSEUDOCOUNT = 1.0


def smoothed_model(data: Data) -> np.ndarray:
    """(n, kmax): the smoothed model distributions p~ = (counts + 1) / (P + k) from which the
    participant intervals take the plug-in's bias: E[D(P answers drawn from p~)] - D(p~)
    (``sbias_<stat>``, computed with the floors, exactly like them: binomial marginals for KL and
    Wasserstein, enumeration or controlled Monte Carlo for JS). A plain bootstrap resamples the
    participants' own answers, never draws an option nobody chose, and so misses much of the
    bias of small or peaked runs (its intervals covered 0.47-0.85 in the card's simulations);
    drawing from p~ does not. ``sbias`` is NaN where the divergence of p~ is infinite (exact KL
    against a human share of 0); there the intervals fall back to the bootstrap's own bias."""
    kmax = data.human.shape[1]
    lengths = data.answers.lengths.astype(np.float64)
    valid = np.arange(kmax)[None, :] < data.ks[:, None]
    a = INTERVAL_PSEUDOCOUNT
    return np.where(valid, (data.model * lengths[:, None] + a) / (lengths + a * data.ks)[:, None], 0.0)


def smoothed_cumulative(cum: np.ndarray, P: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """The cumulative shares of the smoothed model distribution p~ (see smoothed_model): step s
    (0-based) of (cum P + a (s + 1)) / (P + a k), so that a step nobody crossed still has a share
    strictly inside (0, 1) and so a variance."""
    a = INTERVAL_PSEUDOCOUNT
    steps = np.arange(1, cum.shape[1] + 1)[None, :]
    return (cum * P[:, None] + a * steps) / (P + a * ks)[:, None]


def finite_or_none(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def percentile_interval(reps: np.ndarray | None, confidence: float) -> tuple[float | None, float | None]:
    if reps is None:
        return None, None
    reps = reps[np.isfinite(reps)]
    if len(reps) == 0:
        return None, None
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(reps, [tail, 100.0 - tail])
    return finite_or_none(low), finite_or_none(high)


def two_sided_z(confidence: float) -> float:
    return float(ndtri(0.5 + confidence / 2.0))


def masked_mean(values: np.ndarray, mask: np.ndarray) -> float | None:
    return finite_or_none(values[mask].mean()) if mask.any() else None


def jackknife_moments(data: Data, pboot, stat: str) -> tuple[np.ndarray, np.ndarray]:
    """Per question: the participant jackknife's bias estimate (G_i - 1) x mean deviation of the
    delete-a-group replicates from the plug-in, and its variance (G_i - 1) / G_i x sum of squared
    deviations from their mean, G_i = the groups holding one of the question's participants (a
    replicate that deletes none of them deviates by 0). NaN where undefined."""
    nan = np.full(data.n, np.nan)
    if pboot is None or f"q_{stat}_n" not in pboot:
        return nan, nan
    G = pboot["groups"]
    cnt = pboot[f"q_{stat}_n"]
    s1, s2 = pboot[f"q_{stat}_d"] * cnt, pboot[f"q_{stat}_d2"] * cnt
    g = np.minimum(data.answers.lengths, G).astype(np.float64)
    ok = (g >= 2) & (cnt >= 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        bias = np.where(ok, (g - 1.0) * s1 / g, np.nan)
        var = np.where(ok, (g - 1.0) / g * np.maximum(s2 - s1 * s1 / g, 0.0), np.nan)
    return bias, var


def human_variance(data: Data, p: np.ndarray, stat: str, settings: dict, js: np.ndarray | None = None) -> np.ndarray:
    """Per question: the delta-method variance of the divergence that comes from the human side,
    whose distribution is itself a survey estimate of its population: g' Sigma g with Sigma =
    (diag q - q q') / n_eff, g the divergence's gradient in the human shares at (p, q). 0 where
    ``human_n_effective`` was not given (the reference is then treated as exact), and without
    computing anything. ``js``: the JS distances of p, when the caller has them (one pass fewer)."""
    if data.human_n_eff is None or not np.isfinite(data.human_n_eff).any():
        return np.zeros(data.n)
    n_eff = data.human_n_eff
    kmax = data.human.shape[1]
    ks, q = data.ks, data.human
    rows = None
    if stat == "wasserstein":  # defined for ordinal questions only: the others get 0, uncomputed
        rows = np.flatnonzero(data.ordinal)
        ks, q, p, n_eff = ks[rows], q[rows], p[rows], n_eff[rows]
    valid = np.arange(kmax)[None, :] < ks[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        if stat == "kl":
            eps = settings["smoothing"] if settings["zero_policy"] == "smoothing" else 0.0
            g = -(p + eps) / (q + eps)
        elif stat == "js":
            if js is None:
                js = row_divergences(p, q, data.ks, data.ordinal, settings, raw=False)["js"]
            g = 0.5 * np.log(2.0 * q / (p + q)) / LN2 / (2.0 * np.maximum(js, 1e-6))[:, None]
        else:
            sign = np.sign(np.cumsum(p - q, axis=1))
            steps = np.arange(kmax)[None, :] < (ks - 1)[:, None]
            sign = np.where(steps, sign, 0.0)
            g = -np.cumsum(sign[:, ::-1], axis=1)[:, ::-1] / (ks - 1)[:, None]  # d/dq_o = -sum_{s >= o} sign_s
        g = np.where(valid & (q > 0), g, 0.0)
        mean = (q * g).sum(axis=1)
        var = ((q * g * g).sum(axis=1) - mean * mean) / n_eff
    var = np.where(np.isfinite(var), np.maximum(var, 0.0), 0.0)
    if rows is None:
        return var
    out = np.zeros(data.n)
    out[rows] = var
    return out


def mean_limits(data: Data, point: dict, pboot, stat: str, column: int, sel: np.ndarray, estimate,
                conf: float, quantiles: dict | None = None) -> tuple:
    """(estimate, low, high, standard error) of a mean over the questions ``sel`` from the
    participant jackknife: se^2 = (G - 1) / G x sum over the G delete-a-group replicates of
    (replicate mean - their mean)^2 (the sampling variance of the mean itself, which shrinks like
    1 / questions), plus the human side's variance sum(human_variance) / questions^2, and for
    the bias-corrected KL the variance of the subtracted bias estimates (their spread over the
    questions / questions). For Wasserstein both parts are scaled by w_fold_factor and the
    quantile is Student t with Welch-Satterthwaite's degrees of freedom.
    ``quantiles``: a dict that receives the quantile used, under ``stat`` (for the normalised
    score's interval, which takes the same).

    For KL the estimate is the bias-corrected mean (plug-in minus the jackknife bias, per
    question): the divergence with unlimited participants. For JS, Wasserstein and the match rate
    it is the plug-in mean, and the interval is for its expectation: the mean a run of the same
    size on the same questions scores (no estimator of them with unlimited participants is
    unbiased at 8-20 participants, see the card). None without the jackknife or when a question
    of ``sel`` has fewer than MIN_PARTICIPANTS answers."""
    none = (None, None, None, None)
    if estimate is None or not sel.any():
        return none
    if pboot is None:
        return none
    if (data.answers.lengths[sel] < MIN_PARTICIPANTS).any():
        return none
    reps = pboot[stat][:, column]
    if not np.isfinite(reps).all() or len(reps) < 2:
        return none
    G = len(reps)
    var = (G - 1.0) / G * float(((reps - reps.mean()) ** 2).sum())
    jack_var = var
    if stat != "match_rate":
        hv = point[f"human_var_{stat}"][sel]
        var += float(hv.sum()) / float(sel.sum()) ** 2
    if stat == "wasserstein":
        # both parts are linearisations at the observed point, which overstate the variance of a
        # near model's distance 1.3-1.6x (w_fold_factor scales them down), and the jackknife's
        # part rests on G - 1 degrees of freedom: Student t with Welch-Satterthwaite's
        # df = var^2 / (jackknife var^2 / (G - 1)) (the human side's delta variance counts as
        # exact), so the scaled-down width still covers at 8 participants, and a collapsed model
        # (jackknife variance 0) keeps z
        df = (var * var) / (jack_var * jack_var / (G - 1.0)) if jack_var > 0 else math.inf
        var *= w_fold_factor(data, point, sel)
    se = math.sqrt(var)
    centre = estimate
    if stat == "kl":
        bias = point["bias_kl"][sel]
        if not np.isfinite(bias).all():
            return none
        centre = estimate - float(bias.mean())
        # the subtracted jackknife bias estimates vary too (the jackknife variance is the
        # plug-in's): their spread over the questions bounds that variance from above (it also
        # holds their real differences), and shrinks like 1 / questions. The survey's part
        # (survey.human_bias) is left out: its noise is already in the human variance's terms
        jack = bias - point["human_bias_kl"][sel]
        bias_var = float(jack.var()) / len(jack)
        participants_var = jack_var + bias_var
        se = math.sqrt(var + bias_var)
        # Student t, not z: at 8 participants the variance of a mean of skewed per-question KLs rests
        # on 7 deletions, and z covered only 0.86-0.88 for far models at 10-30 questions (the card's
        # table). Its degrees of freedom are Welch-Satterthwaite's, the participants' part resting on
        # G - 1 and the human side's delta variance counted as exact: G - 1 where the participants'
        # part dominates (t(7) widens by 21 %, t(99) by 1 %), z where it is 0 (a collapsed model,
        # whose interval t(7) made 1.57x the spread at 30 questions x 8 participants)
        df = se**4 / (participants_var * participants_var / (G - 1.0)) if participants_var > 0 else math.inf
        half = (float(stdtrit(df, 0.5 + conf / 2.0)) if math.isfinite(df) else two_sided_z(conf)) * se
    elif stat == "wasserstein":
        half = (float(stdtrit(df, 0.5 + conf / 2.0)) if math.isfinite(df) else two_sided_z(conf)) * se
    else:
        half = two_sided_z(conf) * se
    if quantiles is not None and se > 0:
        quantiles[stat] = half / se
    lo_b, hi_b = _BOUNDS[stat]
    low, high = (min(max(x, lo_b), hi_b) for x in (centre - half, centre + half))
    return finite_or_none(centre), finite_or_none(low), finite_or_none(high), finite_or_none(se)


def w_fold_factor(data: Data, point: dict, sel: np.ndarray) -> float:
    """The variance of the mean Wasserstein distance over the ordinal questions ``sel`` as a
    multiple of its linearised variance. The participant jackknife (like the human side's delta
    method) measures the variance along the gradient at the observed point, as if the distance
    were linear there; it is a sum of absolute values, which is not where a cumulative step's
    model share is near the human one, so near models got 1.3-1.6x the actual spread (the card's
    table).

    The normalised Wasserstein distance is sum_s |D_s| / (k - 1) over the cumulative steps s,
    D_s = mu_s + e_s, e ~ N(0, Sigma) the sampling noise of both sides' cumulative shares
    (Sigma_st = F_min (1 - F_max) / P at the model's F, plus the same at the human F over n_eff).
    Linearised, its variance is g' Sigma g, g_s = sign(D_s) the observed signs. Each
    |D_s| is a folded normal; its best linear part in e_s has the slope E[sign(D_s)] =
    2 Phi(mu_s / sigma_s) - 1 (Stein's lemma), and what is left over, sigma_s^2 (f_s - slope^2),
    f_s = 1 + lam_s - E[|D_s| / sigma_s]^2 the folded normal's variance in units of sigma_s^2,
    lam_s = mu_s^2 / sigma_s^2, is taken as uncorrelated between steps. So the variance is
    h' Sigma h + sum_s sigma_s^2 (f_s - slope_s^2), h_s = sign(D_s) slope_s, about 0.36 sigma^2
    per step where mu_s = 0 (a near model's) and the linearised one where |mu_s| >> sigma_s.
    mu_s is the observed D_s (the folded normal at the run's own cumulative shares, what a
    parametric resample around them would give; the debiased max(D_s^2 - sigma_s^2, 0) made the
    width follow the estimate's own noise, narrow exactly when the estimate is low, and covered
    0.91 at 30 questions x 20 participants near), and Sigma's model part is at the run's own
    cumulative shares, not the smoothed F~ (a collapsed model's steps have no participant noise).
    The mean's factor is the ratio of the sums over ``sel`` of both (divided by (k - 1)^2). Per
    question parts are computed once per result (in point)."""
    if "_w_fold" not in point:
        kmax = data.human.shape[1]
        ks = data.ks
        steps = np.arange(kmax - 1)[None, :] < (ks - 1)[:, None]
        P = data.answers.lengths.astype(np.float64)[:, None]
        n_h = np.full(data.n, np.inf) if data.human_n_eff is None else data.human_n_eff
        n_h = np.where(np.isfinite(n_h), n_h, np.inf)[:, None]
        ordq = np.flatnonzero(data.ordinal & (ks >= 2))
        lin = np.zeros(data.n)
        smooth = np.zeros(data.n)
        if len(ordq):
            st = steps[ordq]
            pm, qh = data.model[ordq], data.human[ordq]
            cp = np.clip(np.cumsum(pm, axis=1)[:, :-1], 0.0, 1.0)
            cq = np.clip(np.cumsum(qh, axis=1)[:, :-1], 0.0, 1.0)
            Pn, Hn = P[ordq, 0], n_h[ordq, 0]

            def quad(w: np.ndarray, shares: np.ndarray) -> np.ndarray:
                """w' Sigma w for step weights w and one side's shares: Sigma is the multinomial
                covariance of cumulative shares, so w' Sigma w = Var_o(W_o) (over P or n_eff),
                W_o = sum_{s >= o} w_s."""
                W = np.zeros_like(shares)
                W[:, :-1] = np.cumsum(w[:, ::-1], axis=1)[:, ::-1]
                sw = shares * W
                mean = sw.sum(axis=1)
                return np.maximum((sw * W).sum(axis=1) - mean * mean, 0.0)

            with np.errstate(divide="ignore", invalid="ignore"):
                var = cp * (1.0 - cp) / Pn[:, None] + cq * (1.0 - cq) / Hn[:, None]
                # a step nobody crossed (or everybody did) has no noise at the run's own shares, though
                # with answers spread over the other options its true share is rarely 0 or 1: there it
                # takes the Laplace-smoothed share's (a unanimous question, as a collapsed model's, keeps 0)
                spread = pm.max(axis=1) < 1.0 - 1e-12
                unseen = st & spread[:, None] & ((cp <= 1e-12) | (cp >= 1.0 - 1e-12))
                tilde = smoothed_cumulative(cp, Pn, ks[ordq])
                extra = np.where(unseen, tilde * (1.0 - tilde) / Pn[:, None], 0.0)
                var = var + extra
                var[~st] = 0.0
                gap = cp - cq
                gap[~st] = 0.0
                lam = np.where(var > 0, gap * gap / var, 0.0)
                r = np.sqrt(lam)
                slope = 2.0 * ndtr(r) - 1.0  # E[sign]; also 1 - 2 Phi(-r)
                mean = math.sqrt(2.0 / math.pi) * np.exp(-lam / 2.0) + r * slope
                f = np.maximum(1.0 + lam - mean * mean, slope * slope)
                g = np.sign(gap)
                h = g * slope
                scale = (ks[ordq] - 1.0) ** 2
                # the human half of g' Sigma g is human_variance's (the same signs), already computed
                lin[ordq] = quad(g, pm) / Pn / scale + point["human_var_wasserstein"][ordq]
                smooth[ordq] = (quad(h, pm) / Pn + quad(h, qh) / Hn + (h * h * extra).sum(axis=1)
                                + _residual_covariance(var * (f - slope * slope), cp, cq, Pn, Hn, extra, st)) / scale
        good = np.isfinite(lin) & np.isfinite(smooth)
        point["_w_fold"] = (np.where(good, lin, 0.0), np.where(good, smooth, 0.0))
    lin, smooth = (x[sel] for x in point["_w_fold"])
    total = float(lin.sum())
    return float(smooth.sum() / total) if total > 0 else 1.0


def _residual_covariance(residual: np.ndarray, cp: np.ndarray, cq: np.ndarray, Pn: np.ndarray, Hn: np.ndarray,
                         extra: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Per question: the variance of the sum over cumulative steps of what is left of each
    |D_s| after its linear part (``residual``: each step's own, sigma_s^2 (f_s - slope_s^2)).
    The leftovers of two steps are not uncorrelated: the cumulative shares of one question move
    together (Sigma_st = F_min (1 - F_max) / P + the same at the human F / n_eff, plus ``extra``
    on the diagonal), and the leftover of a folded normal is, to first order, its second Hermite
    term, whose correlation between two normals of correlation rho is rho^2. So:
    sum_st rho_st^2 sqrt(R_s R_t); counted as uncorrelated, a far model's mean distance at 8
    participants had 0.95x its actual variance, 0.99x with it."""
    root = np.sqrt(np.maximum(np.where(steps, residual, 0.0), 0.0))
    nsteps = steps.sum(axis=1)
    out = np.zeros(len(cp))
    for m in np.unique(nsteps[nsteps > 0]):  # questions of m steps together: (questions, m, m), not the widest's
        rows = np.flatnonzero(nsteps == m)
        upper = np.triu(np.ones((m, m), dtype=bool))  # cumulative shares rise: F_min = F_s for s <= t

        def side(F: np.ndarray, n: np.ndarray) -> np.ndarray:
            outer = F[:, :, None] * (1.0 - F[:, None, :])
            return np.where(upper, outer, outer.transpose(0, 2, 1)) / n[:, None, None]

        cov = side(cp[rows, :m], Pn[rows])
        cov += side(cq[rows, :m], Hn[rows])
        i = np.arange(m)
        cov[:, i, i] += extra[rows, :m]
        var = cov[:, i, i]
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(var > 0, root[rows, :m] / var, 0.0)  # rho_st^2 sqrt(R_s R_t) = cov_st^2 w_s w_t
        w = np.where(np.isfinite(w), w, 0.0)
        cov *= cov
        out[rows] = (np.matmul(cov, w[:, :, None])[:, :, 0] * w).sum(axis=1)
    return out


def single_choice(data: Data) -> np.ndarray:
    """bool (n,): questions whose every participant gave one answer (a multinomial sample)."""
    single = np.ones(data.n, dtype=bool)
    ans = data.answers
    if ans is not None and ans.weight is not None:
        single[np.unique(ans.question[ans.weight < 1.0])] = False
    return single


def _effective_bias(data: Data, point: dict, pboot, stat: str) -> np.ndarray:
    """Per question: the smoothed-model bias (see smoothed_model) where it is defined, else the
    jackknife's own; NaN where neither is."""
    boot = jackknife_moments(data, pboot, stat)[0]
    smoothed = point.get(f"sbias_{stat}")
    return boot if smoothed is None else np.where(np.isfinite(smoothed), smoothed, boot)


def participant_limits(data: Data, point: dict, pboot, settings: dict) -> dict[str, tuple]:
    """Per question and divergence: (bias-corrected estimate, low, high, standard error) for the
    divergence with unlimited participants, all NaN without the participant bootstrap.

    - Two options, one answer each: the question is one binomial share, so the interval is the
      image of its Wilson interval under the divergence (convex in the share, least at the
      human share): [D at the interval point nearest the human share, the larger D of its ends].
    - Wasserstein of an ordinal question, one answer each: a sum over cumulative steps of
      |model share - human share|; each step's share gets a Wald interval (from the smoothed
      cumulative share, so a step nobody crossed still has width) and the absolute values of
      its ends are summed ([sum of distances from 0, sum of largest absolute ends]).
    - Otherwise (KL and JS of 3 or more options; multiple-choice questions): the plug-in minus
      the smoothed-model bias b, plus or minus z x sqrt(se^2 + b^2), se the participant
      bootstrap's standard deviation: the bias estimate is itself uncertain by about its own
      size, so it widens the interval instead of being trusted.
    KL's estimate and both ends then move down by the survey's own bias (human_bias).
    Coverage is measured in the card (tests/test_metric_coverage.py)."""
    z = two_sided_z(settings["confidence"])
    n = data.n
    nan = np.full(n, np.nan)
    out: dict[str, tuple] = {}
    if pboot is None:
        return {stat: (nan, nan, nan, nan) for stat in DIVERGENCES}
    single = single_choice(data)
    lengths = data.answers.lengths.astype(np.float64)
    two = single & (data.ks == 2) & (lengths >= 1)
    steps = single & data.ordinal & (data.ks >= 3) & (lengths >= 1)
    for stat in DIVERGENCES:
        value = point[stat]
        var = jackknife_moments(data, pboot, stat)[1]
        defined = np.isfinite(var) & np.isfinite(value) & (lengths >= MIN_PARTICIPANTS)
        se = np.where(defined, np.sqrt(var), np.nan)
        b = np.where(defined, _effective_bias(data, point, pboot, stat), np.nan)
        bc = value - b
        if stat != "wasserstein":  # an option nobody chose does not vary in the jackknife
            se = np.fmax(se, _delta_se(data, point, stat, settings))
        human_sd = np.sqrt(point[f"human_var_{stat}"])
        se = np.sqrt(se * se + human_sd * human_sd)
        half = z * np.sqrt(se * se + b * b)
        low, high = bc - half, bc + half
        if two.any():
            i = np.flatnonzero(two & defined)
            low[i], high[i] = _wilson_image(data, i, lengths[i], stat, z, settings)
            low[i], high[i] = low[i] - z * human_sd[i], high[i] + z * human_sd[i]
        if stat == "wasserstein" and steps.any():
            i = np.flatnonzero(steps & defined)
            low[i], high[i] = _folded_steps(data, i, lengths[i], z)
            low[i], high[i] = low[i] - z * human_sd[i], high[i] + z * human_sd[i]
        if stat == "kl":  # the survey's own bias (human_bias) moves the estimate and both ends
            hb = point.get("human_bias_kl", 0.0)
            bc, low, high = bc - hb, low - hb, high - hb
        lo_b, hi_b = _BOUNDS[stat]
        low, high = np.where(defined, low, np.nan), np.where(defined, high, np.nan)
        out[stat] = tuple(np.clip(x, lo_b, hi_b) for x in (bc, low, high)) + (se,)
    return out


def _delta_se(data: Data, point: dict, stat: str, settings: dict) -> np.ndarray:
    """Per question: the delta-method standard error of the plug-in KL or JS distance at the
    smoothed model distribution p~ (see smoothed_model): sqrt(Var_p~(g) / P), g the gradient of
    the divergence in the model shares. Unlike the bootstrap it sees the variation of options
    nobody chose, which dominates when the divergence turns on a rare option (a share of 3 %
    against a human 57 %). NaN where it is undefined (JS of p~ = q)."""
    kmax = data.human.shape[1]
    valid = np.arange(kmax)[None, :] < data.ks[:, None]
    tilde = point["smoothed_model"]
    q = data.human
    P = data.answers.lengths.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if stat == "kl":
            if settings["zero_policy"] == "smoothing":
                eps = settings["smoothing"]
                g = np.log((tilde + eps) / (q + eps))
            else:
                g = np.log(tilde / q)
        else:
            g = 0.5 * np.log(2.0 * tilde / (tilde + q)) / LN2 / (2.0 * point["smoothed_js"][:, None])
        g = np.where(valid, g, 0.0)
        mean = (tilde * g).sum(axis=1)
        var = (tilde * g * g).sum(axis=1) - mean * mean
        out = np.sqrt(np.maximum(var, 0.0) / P)
    return np.where(np.isfinite(out), out, np.nan)


def _wilson_image(data: Data, i: np.ndarray, P: np.ndarray, stat: str, z: float, settings: dict) -> tuple:
    """(low, high) for two-option questions i: the divergence over the Wilson interval of the
    first option's share."""
    c = data.model[i, 0] * P
    centre = (c + z * z / 2.0) / (P + z * z)
    half = z / (P + z * z) * np.sqrt(np.maximum(c * (P - c) / P, 0.0) + z * z / 4.0)
    lo, hi = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    nearest = np.clip(data.human[i, 0], lo, hi)
    ks, human = data.ks[i], data.human[i]
    kmax = human.shape[1]

    def at(share: np.ndarray) -> np.ndarray:
        p = np.zeros((len(i), kmax))
        p[:, 0], p[:, 1] = share, 1.0 - share
        return row_divergences(p, human, ks, np.ones(len(i), dtype=bool), settings, raw=False)[stat]

    return at(nearest), np.maximum(at(lo), at(hi))


def _folded_steps(data: Data, i: np.ndarray, P: np.ndarray, z: float) -> tuple:
    """(low, high) of the normalised Wasserstein for ordinal single-choice questions i."""
    ks, kmax = data.ks[i], data.human.shape[1]
    step = np.arange(kmax)[None, :] < (ks - 1)[:, None]
    cum_p, cum_q = np.cumsum(data.model[i], axis=1), np.cumsum(data.human[i], axis=1)
    smooth = smoothed_cumulative(cum_p, P, ks)
    se = np.sqrt(np.clip(smooth * (1.0 - smooth), 0.0, None) / P[:, None])
    gap = np.abs(cum_p - cum_q)
    low = np.where(step, np.maximum(gap - z * se, 0.0), 0.0).sum(axis=1) / (ks - 1)
    high = np.where(step, gap + z * se, 0.0).sum(axis=1) / (ks - 1)
    return low, high


def per_question_intervals(data: Data, point: dict, settings: dict) -> dict[str, list]:
    """Per question and divergence: the bias-corrected estimate, its participant interval and
    standard error (``point["limits"]``, see participant_limits; None without the participant
    jackknife, with fewer than MIN_PARTICIPANTS answers, for KL under zero_policy='paper', and
    Wasserstein of non-ordinal questions), the floor at the question's P, the uniform baseline
    and the survey's own noise. No per-question normalised score: with 8-20 participants its
    spread (SD 3-18 in 2.x) made a ranking of questions by it meaningless."""
    out: dict[str, list] = {}
    for stat in DIVERGENCES:
        bc, low, high, se = point["limits"][stat]
        for name, arr in (
            (f"{stat}_bc", bc),
            (f"{stat}_participant_ci_low", low),
            (f"{stat}_participant_ci_high", high),
            (f"{stat}_participant_se", se),
            (f"floor_{stat}", point[f"floor_{stat}"]),
            (f"uniform_{stat}", point[f"uniform_{stat}"]),
            (f"survey_noise_{stat}", point[f"survey_noise_{stat}"]),
        ):
            out[name] = [x if math.isfinite(x) else None for x in np.asarray(arr, dtype=np.float64).tolist()]
    return out
