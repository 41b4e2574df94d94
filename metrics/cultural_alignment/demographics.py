"""Preference bias: which demographic group the model's answers resemble, and gaps between groups.

Two views of the same question: the paper's argmax profile (which group the model's preferred
option is most typical of, by within-group shares or by the paper's respondent counts), and the
divergence of the whole model distribution from each group's, with the gap between groups, its
question-bootstrap interval and a sign-flip permutation p-value.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from .divergences import row_divergences
from .intervals import finite_or_none, masked_mean, percentile_interval
from .schema import DEMOGRAPHIC_GROUPS, DIVERGENCES, FAMILY_SLOTS, SLOT_INDEX, SLOTS, TIE_TOLERANCE, Data

__all__ = ["GAP_PAIRS", "bias_outcomes", "bias_profile", "group_divergences", "gap_stats"]

#: Group pairs compared within each family: (family, a, b); a gap > 0 means the model is closer to a.
GAP_PAIRS = [(family, a, b) for family, groups in DEMOGRAPHIC_GROUPS.items() for a, b in itertools.combinations(groups, 2)]


def bias_outcomes(data: Data, model_top: np.ndarray) -> dict[str, np.ndarray]:
    """Per question and group family: index of the group where the model's preferred option(s)
    have the highest share (``bias_<family>``, the default rule) or, by the paper's own rule,
    the most respondents (share x the group's n: ``bias_counts_<family>``; a question counts
    only if every group present gives its n), len(groups) for a tie, -1 where the family is not
    counted."""
    out = {}
    shares = None
    if data.demo is not None:
        shares = np.einsum("nsk,nk->ns", data.demo, model_top.astype(np.float64))  # (n, slots)
    for rule in ("shares", "counts"):
        out.update(_bias_rule(data, shares, rule))
    return out


def _bias_rule(data: Data, shares: np.ndarray | None, rule: str) -> dict[str, np.ndarray]:
    out = {}
    prefix = "bias_" if rule == "shares" else "bias_counts_"
    if data.demo is not None:
        if rule == "counts":
            shares = shares * np.nan_to_num(data.demo_n, nan=-1.0)
    for family, slots in FAMILY_SLOTS.items():
        outcome = np.full(data.n, -1, dtype=np.int64)
        if data.demo is not None:
            present = data.demo_present[:, slots]
            if rule == "counts":
                sized = ~np.isnan(data.demo_n[:, slots])
                present = present & (sized | ~present).all(axis=1, keepdims=True)
            share = np.where(present, shares[:, slots], -np.inf)
            best = share.max(axis=1, keepdims=True)
            winners = present & (share >= best - TIE_TOLERANCE)
            counted = present.sum(axis=1) >= 2
            n_win = winners.sum(axis=1)
            outcome = np.where(counted, np.where(n_win == 1, winners.argmax(axis=1), len(slots)), -1)
        out[f"{prefix}{family}"] = outcome
    return out


def bias_profile(point: dict, mask: np.ndarray, prefix: str = "bias_") -> dict:
    profile: dict[str, Any] = {"n": {}, "all": {}, "matched": {}, "mismatched": {}}
    match = point["match"]
    for family, groups in DEMOGRAPHIC_GROUPS.items():
        outcome = point[f"{prefix}{family}"]
        counted = mask & (outcome >= 0)
        names = list(groups) + ["tie"]
        all_counts = np.bincount(outcome[counted], minlength=len(names)).astype(np.float64)
        matched = np.bincount(outcome[counted], weights=match[counted], minlength=len(names))
        profile["n"][family] = int(counted.sum())
        profile["all"][family] = {g: float(v) for g, v in zip(names, all_counts)}
        profile["matched"][family] = {g: float(v) for g, v in zip(names, matched)}
        profile["mismatched"][family] = {g: float(v) for g, v in zip(names, all_counts - matched)}
    return profile


def group_divergences(data: Data, settings: dict) -> dict[str, Any]:
    """Per question and group: the divergence of the model distribution from that group's
    distribution (``group_<stat>``, (n, slots), NaN where the group is absent, where the exact KL
    is infinite, and Wasserstein of non-ordinal questions); per question and (stat, pair) the gap
    D(model, b) - D(model, a) (``gap_values``, (n, 3 x pairs)) and where it is defined."""
    n = data.n
    out: dict[str, Any] = {}
    for stat in DIVERGENCES:
        out[f"group_{stat}"] = np.full((n, len(SLOTS)), np.nan)
    if data.demo is not None and data.has_demo.any():
        for slot in range(len(SLOTS)):
            present = data.demo_present[:, slot]
            if not present.any():
                continue
            div = row_divergences(data.model, data.demo[:, slot, :], data.ks, data.ordinal, settings, raw=False,
                                  fast_kl=True)
            for stat in DIVERGENCES:
                v = np.where(present & np.isfinite(div[stat]), div[stat], np.nan)
                out[f"group_{stat}"][:, slot] = v
    cols = []
    for stat in DIVERGENCES:
        for family, a, b in GAP_PAIRS:
            cols.append(out[f"group_{stat}"][:, SLOT_INDEX[(family, b)]] - out[f"group_{stat}"][:, SLOT_INDEX[(family, a)]])
    gaps = np.stack(cols, axis=1)
    out["gap_valid"] = np.isfinite(gaps)
    out["gap_values"] = np.where(out["gap_valid"], gaps, 0.0)
    return out


def gap_stats(point: dict, mask: np.ndarray, settings: dict) -> dict[str, Any] | None:
    """Per divergence, family and group pair: the mean gap over the questions where both groups
    are given, its question-bootstrap percentile interval and a two-sided sign-flip permutation
    p-value (under "the model is as close to a as to b", each question's gap is as likely
    positive as negative), with (1 + extreme flips) / (1 + flips). Per group, the mean divergence
    over the questions with that group. None when no question has two groups of a family."""
    valid = point["gap_valid"] & mask[:, None]
    if not valid.any():
        return None
    rows = np.flatnonzero(valid.any(axis=1))
    g = point["gap_values"][rows].astype(np.float64)
    v = valid[rows].astype(np.float64)
    count = v.sum(axis=0)
    mean = np.divide(g.sum(axis=0), count, out=np.full(g.shape[1], np.nan), where=count > 0)
    B, conf, rng = settings["bootstrap_samples"], settings["confidence"], settings["_gap_rng"]
    lows = highs = pvals = np.full(g.shape[1], np.nan)
    if B > 0:
        m = len(rows)
        boot = np.empty((B, g.shape[1]))
        extreme = np.zeros(g.shape[1])
        gf, vf = g.astype(np.float32), v.astype(np.float32)
        step = max(1, (1 << 21) // m)
        for b0 in range(0, B, step):
            b1 = min(B, b0 + step)
            draws = rng.integers(0, m, size=(b1 - b0, m)) + (np.arange(b1 - b0) * m)[:, None]
            counts = np.bincount(draws.ravel(), minlength=(b1 - b0) * m).reshape(b1 - b0, m).astype(np.float32)
            with np.errstate(invalid="ignore", divide="ignore"):
                boot[b0:b1] = (counts @ gf) / (counts @ vf)
            signs = rng.integers(0, 2, size=(b1 - b0, m)).astype(np.float32) * 2 - 1
            flipped = np.abs((signs @ gf) / np.where(count > 0, count, 1.0))
            extreme += (flipped >= np.abs(mean) - 1e-9).sum(axis=0)
        lows, highs = np.full(g.shape[1], np.nan), np.full(g.shape[1], np.nan)
        for c in range(g.shape[1]):
            lows[c], highs[c] = (np.nan if x is None else x for x in percentile_interval(boot[:, c], conf))
        pvals = (1.0 + extreme) / (1.0 + B)
    out: dict[str, Any] = {}
    for si, stat in enumerate(DIVERGENCES):
        per_family: dict[str, Any] = {}
        for family, groups in DEMOGRAPHIC_GROUPS.items():
            group_means = {}
            for group in groups:
                col = point[f"group_{stat}"][:, SLOT_INDEX[(family, group)]]
                group_means[group] = masked_mean(col, mask & np.isfinite(col))
            pairs = {}
            for pi, (fam, a, b) in enumerate(GAP_PAIRS):
                if fam != family:
                    continue
                c = si * len(GAP_PAIRS) + pi
                gap = finite_or_none(mean[c]) if count[c] > 0 else None
                pairs[f"{a}_vs_{b}"] = {
                    "gap": gap,
                    "ci_low": finite_or_none(lows[c]) if gap is not None else None,
                    "ci_high": finite_or_none(highs[c]) if gap is not None else None,
                    "p_value": finite_or_none(pvals[c]) if gap is not None else None,
                    "n_questions": int(count[c]),
                    "closer_to": None if gap is None or gap == 0 else (a if gap > 0 else b),
                }
            per_family[family] = {"group_mean": group_means, "pairs": pairs}
        out[stat] = per_family
    return out
