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
from scipy.special import ndtri

from .divergences import row_divergences
from .schema import DIVERGENCES, LN2, Data

__all__ = [
    "INTERVAL_PSEUDOCOUNT", "smoothed_model", "finite_or_none", "masked_mean", "percentile_interval", "two_sided_z",
    "mean_limits", "per_question_intervals",
]

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


def _bc_interval(reps: np.ndarray | None, estimate: float | None, conf: float, bounds: tuple | None = None) -> tuple:
    """(bias-corrected estimate, low, high, standard error) from participant-bootstrap
    replicates of a plug-in estimate: the bootstrap's bias estimate mean(reps) - estimate is
    subtracted once more (2 x estimate - mean(reps)), and the interval is that value plus or
    minus z x the replicates' standard deviation. It estimates the divergence with unlimited
    participants; its coverage is measured in the card. With ``bounds`` (a divergence lies in
    [0, inf), the JS distance, Wasserstein and the match rate in [0, 1]) all three are clipped
    to them."""
    if reps is None or estimate is None:
        return None, None, None, None
    reps = reps[np.isfinite(reps)]
    if len(reps) < 2:
        return None, None, None, None
    bc = 2.0 * estimate - float(reps.mean())
    se = float(reps.std(ddof=1))
    half = two_sided_z(conf) * se
    low, high = bc - half, bc + half
    if bounds is not None:  # the estimand lies in bounds; clipping keeps every covered value
        bc, low, high = (min(max(x, bounds[0]), bounds[1]) for x in (bc, low, high))
    return finite_or_none(bc), finite_or_none(low), finite_or_none(high), finite_or_none(se)


def mean_limits(point: dict, pboot, stat: str, column: int, sel: np.ndarray, estimate, conf: float) -> tuple:
    """(bias-corrected estimate, low, high, standard error) of a mean divergence over the
    questions ``sel``: the mean plug-in minus the mean smoothed-model bias b (see
    smoothed_model), plus or minus z x sqrt(se^2 + mean|b|^2), se the standard deviation of the
    participant bootstrap's replicate means (which keeps the dependence between a
    participant's answers). The biases of questions add up instead of averaging out, so their
    uncertainty, of about their own size, stays in the interval however many questions there
    are. The match rate, and KL under zero_policy='paper' (no per-question bias), use the plain
    bias-corrected bootstrap (_bc_interval)."""
    reps = None if pboot is None else pboot["match_rate" if stat == "match_rate" else stat][:, column]
    if stat == "match_rate" or reps is None or estimate is None:
        return _bc_interval(reps, estimate, conf, _BOUNDS[stat])
    b = _effective_bias(point, pboot, stat)[sel]
    if not np.isfinite(b).all():
        return _bc_interval(reps, estimate, conf, _BOUNDS[stat])
    reps = reps[np.isfinite(reps)]
    if len(reps) < 2 or len(b) == 0:
        return None, None, None, None
    se = float(reps.std(ddof=1))
    bc = estimate - float(b.mean())
    half = two_sided_z(conf) * math.sqrt(se * se + float(np.abs(b).mean()) ** 2)
    lo_b, hi_b = _BOUNDS[stat]
    bc, low, high = (min(max(x, lo_b), hi_b) for x in (bc, bc - half, bc + half))
    return finite_or_none(bc), finite_or_none(low), finite_or_none(high), finite_or_none(se)


def _single_choice(data: Data) -> np.ndarray:
    """bool (n,): questions whose every participant gave one answer (a multinomial sample)."""
    single = np.ones(data.n, dtype=bool)
    ans = data.answers
    if ans is not None and ans.weight is not None:
        single[np.unique(ans.question[ans.weight < 1.0])] = False
    return single


def _effective_bias(point: dict, pboot, stat: str) -> np.ndarray:
    """Per question: the smoothed-model bias (see smoothed_model) where it is defined, else the
    bootstrap's own (mean replicate minus plug-in); NaN where neither is."""
    boot = np.full(len(point[stat]), np.nan)
    if pboot is not None:
        boot = np.where(pboot[f"q_{stat}_n"] >= 2, pboot[f"q_{stat}_d"], np.nan)
    smoothed = point.get(f"sbias_{stat}")
    return boot if smoothed is None else np.where(np.isfinite(smoothed), smoothed, boot)


def _participant_limits(data: Data, point: dict, pboot, settings: dict) -> dict[str, tuple]:
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
    Coverage is measured in the card (tests/test_metric_coverage.py)."""
    z = two_sided_z(settings["confidence"])
    n = data.n
    nan = np.full(n, np.nan)
    out: dict[str, tuple] = {}
    if pboot is None:
        return {stat: (nan, nan, nan, nan) for stat in DIVERGENCES}
    single = _single_choice(data)
    lengths = data.answers.lengths.astype(np.float64)
    two = single & (data.ks == 2) & (lengths >= 1)
    steps = single & data.ordinal & (data.ks >= 3) & (lengths >= 1)
    for stat in DIVERGENCES:
        value = point[stat]
        cnt, d, d2 = pboot[f"q_{stat}_n"], pboot[f"q_{stat}_d"], pboot[f"q_{stat}_d2"]
        with np.errstate(invalid="ignore", divide="ignore"):
            se = np.sqrt(np.maximum(d2 - d * d, 0.0) * cnt / (cnt - 1.0))
        defined = (cnt >= 2) & np.isfinite(value)
        se = np.where(defined, se, np.nan)
        b = np.where(defined, _effective_bias(point, pboot, stat), np.nan)
        bc = value - b
        if stat != "wasserstein":  # an option nobody chose does not vary in the bootstrap
            se = np.fmax(se, _delta_se(data, point, stat, settings))
        half = z * np.sqrt(se * se + b * b)
        low, high = bc - half, bc + half
        if two.any():
            i = np.flatnonzero(two & defined)
            low[i], high[i] = _wilson_image(data, i, lengths[i], stat, z, settings)
        if stat == "wasserstein" and steps.any():
            i = np.flatnonzero(steps & defined)
            low[i], high[i] = _folded_steps(data, i, lengths[i], z)
        lo_b, hi_b = _BOUNDS[stat]
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
    a = INTERVAL_PSEUDOCOUNT
    smooth = (cum_p * P[:, None] + a * np.arange(1, kmax + 1)[None, :]) / (P + a * ks)[:, None]
    se = np.sqrt(np.clip(smooth * (1.0 - smooth), 0.0, None) / P[:, None])
    gap = np.abs(cum_p - cum_q)
    low = np.where(step, np.maximum(gap - z * se, 0.0), 0.0).sum(axis=1) / (ks - 1)
    high = np.where(step, gap + z * se, 0.0).sum(axis=1) / (ks - 1)
    return low, high


def per_question_intervals(data: Data, point: dict, pboot, settings: dict) -> dict[str, list]:
    """Per question and divergence: the bias-corrected estimate, its participant interval and
    standard error (see _participant_limits; None without the participant bootstrap, for KL under
    zero_policy='paper', and Wasserstein of non-ordinal questions), the floor, the uniform
    baseline, the normalised score and its participant interval (the plug-in score plus or minus
    z x the replicates' standard deviation over the score's denominator)."""
    z = two_sided_z(settings["confidence"])
    out: dict[str, list] = {}
    limits = _participant_limits(data, point, pboot, settings)
    for stat in DIVERGENCES:
        bc, low, high, se = limits[stat]
        ok = point[f"norm_ok_{stat}"]
        den = np.where(ok, point[f"den_{stat}"], 1.0)
        norm = point[f"normalised_{stat}"]
        for name, arr in (
            (f"{stat}_bc", bc),
            (f"{stat}_participant_ci_low", low),
            (f"{stat}_participant_ci_high", high),
            (f"{stat}_participant_se", se),
            (f"floor_{stat}", point[f"floor_{stat}"]),
            (f"uniform_{stat}", point[f"uniform_{stat}"]),
            (f"normalised_{stat}", norm),
            (f"normalised_{stat}_participant_ci_low", np.where(ok, norm - z * se / den, np.nan)),
            (f"normalised_{stat}_participant_ci_high", np.where(ok, norm + z * se / den, np.nan)),
        ):
            out[name] = [x if math.isfinite(x) else None for x in np.asarray(arr, dtype=np.float64).tolist()]
    return out
