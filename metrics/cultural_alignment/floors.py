"""Floors, uniform baselines and normalised scores: what a divergence means for this many participants.

A plug-in divergence of P answers is never 0, even for a perfect simulator; the floor (P
answers drawn from the human distribution itself) and the uniform baseline (P random answers)
give it a scale, and the normalised score (D_uniform - D_model) / (D_uniform - D_floor) reads
1 for a perfect simulator of this size and 0 for random answers. The same expectation tables
give the smoothed-model bias of the participant intervals.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.special import gammaln, xlogy

from .divergences import row_divergences
from .intervals import smoothed_model
from .schema import DIVERGENCES, LN2, Data

__all__ = [
    "FLOOR_EXACT_LIMIT", "FLOOR_MC_DRAWS", "BIAS_MC_DRAWS", "FLOOR_SEED", "WORTH_GRID", "question_floors",
    "normalised_parts", "kl_floor_curve",
]

#: Sample sizes at which worth-N evaluates the exact KL floor of every question; above the last
#: the floor is extended as floor(last) x last / n (the expected KL of n answers falls like
#: (k - 1) / 2n), see kl_floor_curve.
WORTH_GRID = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 25, 32)

#: Exact enumeration of the multinomial outcomes when a question has at most this many
#: (C(P + k - 1, k - 1) compositions of P answers into k options); Monte Carlo above it.
FLOOR_EXACT_LIMIT = 100

#: Monte Carlo draws per question for the Jensen-Shannon expectation above FLOOR_EXACT_LIMIT
#: (with the exactly known JS divergence as control variate, see _expected_js).
FLOOR_MC_DRAWS = 16

#: The same for the smoothed model distributions of the participant intervals, whose bias
#: enters the interval's centre and width but is not itself a reported score.
BIAS_MC_DRAWS = 8

#: The floors' Monte Carlo stream is seeded by this constant, not by ``seed``, so a floor does
#: not move when only the bootstrap seed changes.
FLOOR_SEED = 20250401


def _n_compositions(P: int, k: int) -> int:
    return math.comb(P + k - 1, k - 1)


def _compositions(P: int, k: int) -> np.ndarray:
    """All (M, k) int64 count vectors of P answers over k options (stars and bars)."""
    bars = np.array(list(itertools.combinations(range(P + k - 1), k - 1)), dtype=np.int64).reshape(-1, k - 1)
    edges = np.hstack([np.full((len(bars), 1), -1), bars, np.full((len(bars), 1), P + k - 1)])
    return np.diff(edges, axis=1) - 1


def _binomial_pmf(P: int, r: np.ndarray, leading: bool = False) -> np.ndarray:
    """(..., P + 1) float64: Binomial(P, r) probabilities of 0..P for every entry of r. Up to
    200 answers as C(P, c) r^c (1 - r)^(P - c) from running products (no exp: about 3x
    faster), above that in logs (where C(P, c) would overflow). ``leading``: (P + 1, ...) as
    computed, without the transposing copy (a caller that only contracts over c saves it)."""
    if P <= 200 and leading:
        r = np.asarray(r, dtype=np.float64)
        up = np.empty((P + 1,) + r.shape)
        down = np.empty_like(up)
        up[0] = down[0] = 1.0
        rest = 1.0 - r
        for c in range(1, P + 1):
            np.multiply(up[c - 1], r, out=up[c])
            np.multiply(down[c - 1], rest, out=down[c])
        up *= down[::-1]
        up *= np.array([math.comb(P, c) for c in range(P + 1)], dtype=np.float64).reshape((P + 1,) + (1,) * r.ndim)
        return up
    if leading:
        return np.ascontiguousarray(np.moveaxis(_binomial_pmf(P, r), -1, 0))
    if P <= 200:
        return np.ascontiguousarray(np.moveaxis(_binomial_pmf(P, r, leading=True), 0, -1))
    c = np.arange(P + 1, dtype=np.float64)
    log_choose = gammaln(P + 1.0) - gammaln(c + 1.0) - gammaln(P - c + 1.0)
    r = np.clip(r, 1e-300, 1.0 - 1e-16)[..., None]  # r = 0 or 1 then give 1 at c = 0 or P (within 1e-15)
    out = c * np.log(r)
    out += (P - c) * np.log1p(-r)
    out += log_choose
    return np.exp(out, out=out)


def _js_terms(P: int, q: np.ndarray) -> np.ndarray:
    """(m, k, P + 1): per option the Jensen-Shannon divergence term (nats) of a model share c/P
    against the human share q: (x log x + q log q) / 2 - m log m with m = (x + q) / 2."""
    x = np.arange(P + 1) / P
    mid = 0.5 * (x[None, None, :] + q[:, :, None])
    out = np.log(np.where(mid > 0, mid, 1.0))
    out *= mid
    np.subtract(0.5 * (xlogy(x, x)[None, None, :] + xlogy(q, q)[:, :, None]), out, out=out)
    return out


def _expected_divergences(
    q: np.ndarray, P: int, ordinal: np.ndarray, settings: dict, rng: np.random.Generator,
    sources: dict[str, np.ndarray] | None = None, draws: dict[str, int] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """For questions with k options and P answers each (q: (m, k) human distributions): the
    expected KL, JS and Wasserstein of the empirical distribution of P answers drawn from q
    itself (``floor``) and from the uniform distribution (``uniform``), scored against q exactly
    as the point estimates are. ``sources`` replaces these two by other named distributions to
    draw from: (m, k), one per question, or (1, k), shared (the smoothed model distributions of
    the participant intervals use it); ``draws`` gives a source other than FLOOR_MC_DRAWS Monte
    Carlo draws.

    KL and Wasserstein are sums of per-option (per-cumulative-step) terms, so their expectations
    need only the binomial marginals: exact for any k and P. The JS distance is the square root
    of such a sum, which needs the joint multinomial: exact enumeration up to FLOOR_EXACT_LIMIT
    outcomes, else FLOOR_MC_DRAWS seeded draws with the (exactly known) JS divergence as control
    variate. Uniform draws are the same for every question, so their tables are built once."""
    m, k = q.shape
    x = np.arange(P + 1) / P
    terms = _js_terms(P, q)  # (m, k, P + 1), shared by both kinds
    cum_q = np.cumsum(q, axis=1)[:, :-1]
    gaps = np.abs(x[None, None, :] - cum_q[ordinal][:, :, None])  # (ordinal questions, k - 1, P + 1)
    smoothing = settings["zero_policy"] == "smoothing"
    if smoothing:
        eps = settings["smoothing"]
        alpha, beta = 1.0 / (1.0 + k * eps), eps / (1.0 + k * eps)
        a = alpha * x + beta
        h = a * np.log(a)
        log_qs = np.log((q + eps) * alpha)
    else:
        h = xlogy(x, x)
        with np.errstate(divide="ignore"):
            log_q = np.log(q)
    exact = _n_compositions(P, k) <= FLOOR_EXACT_LIMIT
    if exact:
        comps = _compositions(P, k)
        log_weight = gammaln(P + 1.0) - gammaln(comps + 1.0).sum(axis=1)  # (M,)
    if sources is None:
        sources = {"floor": q, "uniform": np.full((1, k), 1.0 / k)}
    results: dict[str, dict[str, np.ndarray]] = {}
    for kind, r in sources.items():  # r: (m, k) or (1, k), broadcast against q
        shared = r.shape[0] == 1
        pmf = _binomial_pmf(P, r)  # (m or 1, k, P + 1)
        out: dict[str, np.ndarray] = {}
        if smoothing:
            out["kl"] = (pmf @ h).sum(axis=1) - ((alpha * r + beta) * log_qs).sum(axis=1)
        else:
            with np.errstate(invalid="ignore"):
                cross = np.where(r > 0, r * log_q, 0.0)  # -inf where r > 0 = q: an infinite expectation
            out["kl"] = (pmf @ h).sum(axis=1) - cross.sum(axis=1)
        out["wasserstein"] = np.full(m, np.nan)
        if ordinal.any():  # only ordinal questions have a Wasserstein distance
            cum_r = np.cumsum(r if shared else r[ordinal], axis=1)[:, :-1]
            w = (_binomial_pmf(P, cum_r) * gaps).sum(axis=(1, 2)) / (k - 1)
            out["wasserstein"][ordinal] = w
        jsd_mean = (pmf * terms).sum(axis=(1, 2))  # exact E[JS divergence] in nats
        if exact:
            js = np.empty(m)
            step = max(1, (1 << 20) // (len(comps) * k))
            for s0 in range(0, m, step):
                sl = slice(s0, s0 + step)
                jsd = np.zeros((len(terms[sl]), len(comps)))
                for o in range(k):
                    jsd += terms[sl, o, :][:, comps[:, o]]
                rows = r[:1] if shared else r[sl]
                logp = np.broadcast_to(log_weight, (len(rows), len(comps))).copy()
                for o in range(k):
                    logp += xlogy(comps[None, :, o], rows[:, o, None])
                js[sl] = (np.exp(logp) * np.sqrt(np.maximum(jsd, 0.0) / LN2)).sum(axis=1)
        else:
            if not shared:
                counts = _multinomial_draws(P, r, (draws or {}).get(kind, FLOOR_MC_DRAWS), rng)  # (R, m, k)
                # gathered question by question ((m, R, k)): each question's table is read R times
                # while in cache, not streamed once per draw (3x faster at k = 11)
                index = counts.transpose(1, 0, 2) + (np.arange(m * k, dtype=np.int32) * (P + 1)).reshape(m, 1, k)
                jsd = np.take(terms.ravel(), index).sum(axis=2, dtype=np.float64)  # (m, R)
            else:
                common = rng.multinomial(P, r[0] / r[0].sum(), size=FLOOR_MC_DRAWS)  # (R, k)
                jsd = np.zeros((m, FLOOR_MC_DRAWS))
                for o in range(k):
                    jsd += terms[:, o, :][:, common[:, o]]
            root = np.sqrt(np.maximum(jsd, 0.0) / LN2)
            slope = 0.5 / np.sqrt(np.maximum(jsd_mean, 1e-300) * LN2)  # d sqrt(J / ln 2) / dJ at E[J]
            js = root.mean(axis=1) - slope * (jsd.mean(axis=1) - jsd_mean)
        out["js"] = js
        out["js_exact"] = np.full(m, exact)
        results[kind] = out
    return results


def _multinomial_draws(P: int, r: np.ndarray, R: int, rng: np.random.Generator) -> np.ndarray:
    """(R, m, k) int64 counts of P answers drawn from each row of r by inverse CDF. Each draw j
    sorts P uniforms once; every row rotates them by its own uniform shift (modulo 1, a
    Cranley-Patterson rotation), so each row's P answers are exact independent draws and the
    rows' Monte Carlo errors do not line up, while one sorted array serves all rows."""
    m, k = r.shape
    u = np.sort(rng.random((R, P)), axis=1)
    shift = rng.random((R, m))
    cum = np.cumsum(r, axis=1)
    cum[:, -1] = 1.0 + 1e-9  # every uniform falls at or below the last edge
    counts = np.empty((R, m, k), dtype=np.int32)
    for j in range(R):
        # (u + s) mod 1 <= c  <=>  u <= c - s (and u > 1 - s) when c >= s, else 1 - s < u <= 1 + c - s
        s_j = shift[j][:, None]
        e = cum - s_j
        wrap = np.searchsorted(u[j], 1.0 - shift[j], side="right")[:, None]  # uniforms <= 1 - s
        below = np.searchsorted(u[j], np.where(e >= 0, e, 1.0 + e), side="right")
        below = np.where(e >= 0, below + (P - wrap), below - wrap)
        counts[j, :, 0] = below[:, 0]
        np.subtract(below[:, 1:], below[:, :-1], out=counts[j, :, 1:])
    return counts


def question_floors(data: Data, settings: dict) -> dict[str, np.ndarray]:
    """Per question: the floor (expected divergence of P answers drawn from the human
    distribution itself, P = the question's number of answers: what a perfect simulator of
    this size scores) and the uniform baseline (P answers drawn uniformly at random). For
    probability vectors the floor is 0 and the baseline is the divergence of the uniform vector
    itself (there is no sampling noise). NaN where undefined (Wasserstein of non-ordinal
    questions; exact KL of a baseline that can pick an option no human chose)."""
    n, kmax = data.human.shape
    out = {f"{kind}_{stat}": np.full(n, np.nan) for kind in ("floor", "uniform", "sbias") for stat in DIVERGENCES}
    out["floor_exact"] = np.ones(n, dtype=bool)
    if data.answers is None:
        valid = np.arange(kmax)[None, :] < data.ks[:, None]
        uniform = np.where(valid, 1.0 / data.ks[:, None], 0.0)
        base = row_divergences(uniform, data.human, data.ks, data.ordinal, settings)
        for stat in ("kl", "js", "wasserstein"):
            out[f"floor_{stat}"] = np.where(data.ordinal | (stat != "wasserstein"), 0.0, np.nan)
            out[f"uniform_{stat}"] = np.where(np.isfinite(base[stat]), base[stat], np.nan)
        return out
    lengths = data.answers.lengths
    # the per-question participant intervals' smoothed model distributions share the floors'
    # tables (only the per-question table has those intervals: no cost for means alone)
    wanted = settings["participant_bootstrap_samples"] > 0 and settings.get("_per_question", True)
    tilde = smoothed_model(data) if wanted else None
    expected = {stat: np.full(n, np.nan) for stat in DIVERGENCES}
    for k, idx in data.groups.items():
        for P in np.unique(lengths[idx]).tolist():
            sel = idx[lengths[idx] == P]
            q = data.human[sel, :k]
            rng = np.random.default_rng([FLOOR_SEED, k, P])
            sources = {"floor": q, "uniform": np.full((1, k), 1.0 / k)}
            if tilde is not None:
                sources["smoothed"] = tilde[sel, :k]  # drawn last: the floors' stream is unchanged
            both = _expected_divergences(q, int(P), data.ordinal[sel], settings, rng, sources,
                                         draws={"smoothed": BIAS_MC_DRAWS})
            for kind, e in both.items():
                for stat in DIVERGENCES:
                    if kind == "smoothed":
                        expected[stat][sel] = e[stat]
                    else:
                        out[f"{kind}_{stat}"][sel] = np.where(np.isfinite(e[stat]), e[stat], np.nan)
                if kind == "floor":
                    out["floor_exact"][sel] = e["js_exact"]
    if tilde is not None:
        at_tilde = row_divergences(tilde, data.human, data.ks, data.ordinal, settings, raw=False)
        out["smoothed_model"], out["smoothed_js"] = tilde, at_tilde["js"]  # for intervals._delta_se
        with np.errstate(invalid="ignore"):
            for stat in DIVERGENCES:
                b = expected[stat] - at_tilde[stat]
                out[f"sbias_{stat}"] = np.where(np.isfinite(b), b, np.nan)
    return out


def normalised_parts(data: Data, point: dict, settings: dict, min_participants: int) -> dict[str, np.ndarray]:
    """Per question and divergence: numerator and denominator of the normalised score (0 where
    undefined, so that sums over a subset give the aggregate score) and the mask of questions
    where it is defined.

    KL: numerator D(uniform, q) - D_bc, denominator D(uniform, q) (the uniform vector, floor 0):
    the bias-corrected KL (``point["kl_bc"]``, unlimited participants) makes the score the
    same for a run of any size. JS and Wasserstein: (D_uniform - D) / (D_uniform - D_floor) at
    the question's P, as in 2.x (no unbiased D_bc exists for them), comparable only between runs
    of the same P. Undefined without a baseline, with a denominator <= 1e-12 (e.g. a uniform
    human distribution) or with fewer than ``min_participants`` answers."""
    out = {}
    kmax = data.human.shape[1]
    valid = np.arange(kmax)[None, :] < data.ks[:, None]
    uniform = row_divergences(np.where(valid, 1.0 / data.ks[:, None], 0.0), data.human, data.ks, data.ordinal,
                              settings, raw=False, fast_kl=True)
    enough = data.answers.lengths >= min_participants if data.answers is not None else np.ones(data.n, dtype=bool)
    for stat in DIVERGENCES:
        if stat == "kl":
            u, f, d = uniform["kl"], np.zeros(data.n), point["kl_bc"]
        else:
            u, f, d = point[f"uniform_{stat}"], point[f"floor_{stat}"], point[stat]
        den = u - f
        ok = np.isfinite(u) & np.isfinite(f) & np.isfinite(d) & (den > 1e-12) & enough
        out[f"num_{stat}"] = np.where(ok, u - d, 0.0)
        out[f"den_{stat}"] = np.where(ok, den, 0.0)
        out[f"norm_ok_{stat}"] = ok
    return out


def kl_floor_curve(data: Data, settings: dict) -> np.ndarray:
    """(n, len(WORTH_GRID)): per question, the expected KL (under the settings' zero policy) of
    the empirical distribution of n respondents drawn from the human distribution, for every n
    of WORTH_GRID: exact, from the binomial marginals (KL is a sum of per-option terms, the
    cross term is linear in the shares, so its expectation is that of q itself).

    E[h(X / n)] for X ~ Binomial(n, r) is (1 - r)^n sum_c C(n, c) h(c / n) t^c with t = r / (1 - r):
    a polynomial in t whose coefficients depend on n only, so all sizes of the grid come from one
    table of powers t^0..t^32 and one matrix product (building every pmf took a second at
    100,000 questions). Shares above 1/2 use the mirror image (t = (1 - r) / r, c -> n - c), so
    t <= 1 and no power overflows; every term has the sign of h, so nothing cancels."""
    out = np.empty((data.n, len(WORTH_GRID)))
    smoothing = settings["zero_policy"] == "smoothing"
    eps = settings["smoothing"]
    top = WORTH_GRID[-1]
    for k, idx in data.groups.items():
        q = data.human[idx, :k]
        if smoothing:
            alpha, beta = 1.0 / (1.0 + k * eps), eps / (1.0 + k * eps)
            cross = ((alpha * q + beta) * np.log(alpha * q + beta)).sum(axis=1)
        else:
            alpha, beta = 1.0, 0.0
            cross = xlogy(q, q).sum(axis=1)
        # coefficient rows C(n, c) h(c / n), and the same mirrored (c -> n - c), one row per size
        low_coef = np.zeros((len(WORTH_GRID), top + 1))
        high_coef = np.zeros_like(low_coef)
        for j, n in enumerate(WORTH_GRID):
            a = alpha * np.arange(n + 1) / n + beta
            coef = xlogy(a, a) * np.array([math.comb(n, c) for c in range(n + 1)], dtype=np.float64)
            low_coef[j, : n + 1] = coef
            high_coef[j, : n + 1] = coef[::-1]
        r = q.ravel()
        expected = np.empty((len(WORTH_GRID), r.size))
        for half, coef in ((r <= 0.5, low_coef), (r > 0.5, high_coef)):
            cols = np.flatnonzero(half)
            if not len(cols):
                continue
            x = r[cols]
            base = 1.0 - x if coef is low_coef else x
            t = (x if coef is low_coef else 1.0 - x) / base
            powers = np.empty((top + 1, len(cols)))
            powers[0] = 1.0
            for c in range(1, top + 1):
                np.multiply(powers[c - 1], t, out=powers[c])
            value = coef @ powers  # (sizes, entries): sum_c C(n, c) h(c / n) t^c
            for j, n in enumerate(WORTH_GRID):
                value[j] *= base**n
            expected[:, cols] = value
        out[idx] = expected.reshape(len(WORTH_GRID), len(idx), k).sum(axis=2).T - cross[:, None]
    return out
