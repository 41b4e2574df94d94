"""The per-question divergences (KL, Jensen-Shannon, normalised Wasserstein) and the zero-cell policy.

One implementation of the three distances on zero-padded (questions, options) arrays, used for
the point estimates, the floors and baselines, the demographic groups and the participant
intervals alike, so every number the metric reports is the same divergence.
"""

from __future__ import annotations

import numpy as np
from scipy.special import entr, rel_entr

from .schema import LN2, TIE_TOLERANCE, Data, where

__all__ = ["ZERO_POLICIES", "top_sets", "rel_entr_terms", "row_divergences", "point_estimates"]

ZERO_POLICIES = ("smoothing", "paper", "raise")


def top_sets(dist: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Boolean mask of the options within TIE_TOLERANCE of the row maximum."""
    masked = np.where(valid, dist, -np.inf)
    return masked >= masked.max(axis=1, keepdims=True) - TIE_TOLERANCE


def rel_entr_terms(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """scipy.special.rel_entr for non-negative x and y (x log(x / y); 0 where x = 0; inf where
    x > 0 = y) in plain numpy, about 3x faster (scipy's ufunc branches per element). numpy's log
    is not libm's: values differ in the last bits, which a KL's inversion into worth-N (near 0)
    or a JS distance near 0 (a square root) magnifies, so only KLs that are reported as they are
    (the groups', the uniform baseline's) use it."""
    with np.errstate(divide="ignore"):
        ratio = np.divide(x, y, out=np.ones_like(x, dtype=np.float64), where=x > 0)
    np.log(ratio, out=ratio)
    ratio *= x
    return ratio


def row_divergences(
    p: np.ndarray, q: np.ndarray, ks: np.ndarray, ordinal: np.ndarray, settings: dict, raw: bool = True,
    fast_kl: bool = False,
) -> dict:
    """Per row: KL(p || q) under the smoothing policy or exact (``kl``, infinite where p > 0 = q
    unless smoothed), the exact KL (``kl_raw``), the JS distance and the normalised Wasserstein
    (NaN for non-ordinal rows). p and q are (n, kmax) zero padded. ``fast_kl``: the KLs through
    rel_entr_terms (same values to about 1e-15)."""
    rel_kl = rel_entr_terms if fast_kl else rel_entr
    kmax = q.shape[1]
    valid = np.arange(kmax)[None, :] < ks[:, None]
    smoothing = settings["zero_policy"] == "smoothing"
    kl_raw = rel_kl(p, q).sum(axis=1) if raw or not smoothing else None
    if smoothing:
        eps = settings["smoothing"]
        scale = 1.0 / (1.0 + ks * eps)
        ps = np.where(valid, (p + eps) * scale[:, None], 0.0)
        qs = np.where(valid, (q + eps) * scale[:, None], 0.0)
        kl = rel_kl(ps, qs).sum(axis=1)
    else:
        kl = kl_raw
    m = 0.5 * (p + q)
    js = np.sqrt(np.maximum((rel_entr(p, m).sum(axis=1) + rel_entr(q, m).sum(axis=1)) / (2.0 * LN2), 0.0))
    wasserstein = np.full(len(ks), np.nan)
    if ordinal.all():
        wasserstein = _wasserstein(p, q, ks)
    elif ordinal.any():  # only the ordinal rows have one
        wasserstein[ordinal] = _wasserstein(p[ordinal], q[ordinal], ks[ordinal])
    return {"kl": kl, "kl_raw": kl_raw, "js": js, "wasserstein": wasserstein}


def _wasserstein(p: np.ndarray, q: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Per row: the 1-Wasserstein distance of two distributions over ordered options, over k - 1."""
    cdf_gap = np.abs(np.cumsum(p - q, axis=1))
    steps = np.arange(q.shape[1])[None, :] < (ks - 1)[:, None]
    return np.where(steps, cdf_gap, 0.0).sum(axis=1) / (ks - 1)


def point_estimates(data: Data, settings: dict) -> dict[str, np.ndarray]:
    n, kmax = data.human.shape
    valid = np.arange(kmax)[None, :] < data.ks[:, None]
    p, q = data.model, data.human
    div = row_divergences(p, q, data.ks, data.ordinal, settings)
    kl_raw = div["kl_raw"]
    infinite = np.isinf(kl_raw)
    policy = settings["zero_policy"]
    if policy == "smoothing":
        kl = div["kl"]
    elif policy == "raise":
        if infinite.any():
            i = int(np.flatnonzero(infinite)[0])
            o = int(np.flatnonzero((p[i] > 0) & (q[i] == 0))[0])
            raise ValueError(
                f"{where(i, data.ids)}: KL(model || human) is infinite: the model gives option {o} a share of "
                f"{p[i, o]:.6g} but the human share is 0. Use zero_policy='smoothing' (additive smoothing) or "
                "'paper' (infinity replaced by the largest finite KL + 1)"
            )
        kl = kl_raw
    else:  # paper
        kl = _replace_infinite(kl_raw[None, :])[0]
        if not np.isfinite(kl).all():
            raise ValueError(
                "every question has an infinite KL(model || human) (the model always picks options no human chose), "
                "so zero_policy='paper' has no finite value to replace them with; use zero_policy='smoothing'"
            )
    model_top = top_sets(p, valid)
    human_top = top_sets(q, valid)
    match = (model_top & human_top).sum(axis=1) / (model_top.sum(axis=1) * human_top.sum(axis=1))
    point = {
        "kl": kl,
        "kl_raw": kl_raw,
        "kl_infinite": infinite,
        "js": div["js"],
        "wasserstein": div["wasserstein"],
        "match": match.astype(np.float64),
        "entropy": entr(p).sum(axis=1),
        "human_entropy": entr(q).sum(axis=1),
        "model_top": model_top,
        "human_top": human_top,
    }
    return point


def _replace_infinite(kl: np.ndarray) -> np.ndarray:
    """The paper's rule, per row: infinity -> (largest finite value in the row) + 1."""
    finite = np.isfinite(kl)
    top = np.where(finite, kl, -np.inf).max(axis=1, keepdims=True)
    return np.where(finite, kl, top + 1.0)
