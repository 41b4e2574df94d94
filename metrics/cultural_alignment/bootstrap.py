"""The two resamplings: a cluster bootstrap over questions and a jackknife over participants.

Both are vectorised: a replicate is a vector of weights, and the means of every subset (all
questions, each value dimension) come from one matrix product. Questions of one battery (the
dataset's ``battery``: items asked as one block, answered by the same people in one sitting)
are drawn together, so their correlation stays in the question interval. The participant
jackknife (delete a group of participants, rescore every question) is the costliest part of
the metric, so it works in float32 on blocks of questions that share their option slots; it
replaces 2.x's participant bootstrap because its bias estimate is the one that makes the
bias-corrected KL mean unbiased (README, "Bias"), and it needs G <= 100 replicates, not 100.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
from scipy.special import entr

from .divergences import top_sets
from .intervals import MIN_PARTICIPANTS
from .schema import DIVERGENCES, LN2, Answers, Data

__all__ = [
    "PARTICIPANT_BOOTSTRAP_DEFAULT", "JACKKNIFE_GROUPS", "one_blas_thread", "question_bootstrap", "participant_jackknife",
]

#: Default of ``participant_bootstrap_samples`` (capped by bootstrap_samples); since metric 3.0
#: any value > 0 switches the participant jackknife on and 0 switches it off (the name is kept
#: so that 2.x callers keep working).
PARTICIPANT_BOOTSTRAP_DEFAULT = 100

#: The participant jackknife deletes one of at most this many groups of participants per
#: replicate (participant j is in group j mod G): delete-one for up to 100 participants, a
#: grouped jackknife above, so the cost stops growing with the run's size.
JACKKNIFE_GROUPS = 100

# In the participant bootstrap, counts (in participant units) this close to the top count tie.
_COUNT_TIE_TOLERANCE = 1e-4

# Participant bootstrap work unit: replicates per chunk, float32 elements per block of questions.
_REPLICATE_CHUNK = 32
_BLOCK_ELEMENTS = 1 << 18


@contextmanager
def one_blas_thread():
    """Run the bootstraps' matrix products on one BLAS thread. They are small, and a
    multi-threaded OpenBLAS busy-waits when the cores are shared with other processes,
    which turned one second into a minute on a loaded 2-core machine. threadpoolctl is
    optional (it comes with scikit-learn); without it BLAS keeps its own setting."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _answered(data: Data) -> np.ndarray | None:
    """bool (n,): questions with at least MIN_PARTICIPANTS answers, where some have fewer and some
    that many; None otherwise (no extra subset column then)."""
    if data.answers is None:
        return None
    enough = data.answers.lengths >= MIN_PARTICIPANTS
    return enough if enough.any() and not enough.all() else None


def answered_column(data: Data) -> int | None:
    """The index of the subset column of the questions with at least MIN_PARTICIPANTS answers,
    present only where some questions have fewer and some have that many (worth N of a model that
    parses rarely is over the others, and its interval needs their own replicate means)."""
    return data.dim_matrix.shape[1] + 1 if _answered(data) is not None else None


def _subset_columns(data: Data) -> np.ndarray:
    """(n, 1 + len(dims) [+ 1]) float64: all questions, then one column per value dimension, then
    (see answered_column) the questions answered often enough."""
    cols = [np.ones((data.n, 1)), data.dim_matrix.astype(np.float64)]
    answered = _answered(data)
    if answered is not None:
        cols.append(answered.astype(np.float64)[:, None])
    return np.hstack(cols)


def question_bootstrap(data: Data, point: dict, settings: dict, rng: np.random.Generator) -> dict | None:
    """Percentile bootstrap over questions: resample the batteries (clusters of questions; a
    question without one is its own cluster) with replacement, every question of a drawn
    battery coming along; every mean (overall, per dimension, Wasserstein over the ordinal
    ones) is taken over the questions drawn in that replicate."""
    B = settings["bootstrap_samples"]
    if B == 0:
        return None
    n = data.n
    cluster = data.cluster if data.cluster is not None else np.arange(n)
    n_clusters = int(cluster.max()) + 1
    subsets = _subset_columns(data)
    ordw = data.ordinal.astype(np.float64)
    w = np.nan_to_num(point["wasserstein"])
    # columns: [kl, js, match, count] x subsets, then [w, ordinal count] x subsets
    # then the normalised score's numerator and denominator sums [num, den] x subsets per stat
    norm = [point[f"{part}_{stat}"][:, None] * subsets for stat in DIVERGENCES for part in ("num", "den")]
    values = np.hstack(
        [point["kl"][:, None] * subsets, point["js"][:, None] * subsets, point["match"][:, None] * subsets, subsets,
         (w * ordw)[:, None] * subsets, ordw[:, None] * subsets, *norm]
    ).astype(np.float32)
    sums = np.empty((B, values.shape[1]))
    chunk = max(1, min(B, (1 << 21) // n))
    for b0 in range(0, B, chunk):
        b1 = min(B, b0 + chunk)
        draws = rng.integers(0, n_clusters, size=(b1 - b0, n_clusters), dtype=np.int64)
        draws += (np.arange(b1 - b0, dtype=np.int64) * n_clusters)[:, None]
        counts = np.bincount(draws.ravel(), minlength=(b1 - b0) * n_clusters).reshape(b1 - b0, n_clusters)
        sums[b0:b1] = counts[:, cluster].astype(np.float32) @ values
    s = subsets.shape[1]
    kl, js, match, count, wsum, ocount = (sums[:, c * s : (c + 1) * s] for c in range(6))
    with np.errstate(invalid="ignore", divide="ignore"):
        reps = {"kl": kl / count, "js": js / count, "match_rate": match / count, "wasserstein": wsum / ocount}
        for i, stat in enumerate(DIVERGENCES):
            num, den = sums[:, (6 + 2 * i) * s : (7 + 2 * i) * s], sums[:, (7 + 2 * i) * s : (8 + 2 * i) * s]
            reps[f"normalised_{stat}"] = np.where(den > 0, num / den, np.nan)
    return reps


def participant_jackknife(data: Data, point: dict, settings: dict) -> dict:
    """Jackknife over participants: for each of G = min(P, JACKKNIFE_GROUPS) groups
    (participant j, the j-th answer of every question, is in group j mod G), delete the group
    from every question, rebuild every model distribution, rescore. Deleting a participant from
    all questions at once keeps the dependence between one participant's answers in the
    variance of a mean. Computed in float32 on blocks of questions with the same number of
    option slots; a question left without participants is left out of that replicate.

    Returns ``groups`` (G), the replicates of every mean (``kl``, ``js``, ``match_rate``,
    ``wasserstein``: (G, 1 + dimensions)) and, per question, the replicates' count, mean
    deviation from the point estimate and mean squared deviation (``q_<stat>_n``,
    ``q_<stat>_d``, ``q_<stat>_d2``), from which intervals takes the jackknife bias
    (G - 1) x mean deviation and variance (G - 1) x (mean squared deviation - mean deviation^2).
    Per-question KL moments are not kept under zero_policy='paper' (a replicate's infinity
    replacement depends on all questions); per-question JS and Wasserstein moments only for the
    per-question table (``settings["_per_question"]``): the means need only the replicates, and
    the bias-corrected KL only the KL moments."""
    ans = data.answers
    if ans is None:
        raise ValueError("the participant jackknife needs the participants' answers (predictions)")
    P = int(ans.lengths.max())
    B = min(P, JACKKNIFE_GROUPS)
    rectangular = False  # a replicate deletes answers, so every question's count is its own
    weights = (np.arange(P)[None, :] % B != np.arange(B)[:, None]).astype(np.float32)
    s = data.dim_matrix.shape[1] + 1 + (answered_column(data) is not None)  # _subset_columns' width
    acc = {name: np.zeros((B, s)) for name in ("kl", "kl_inf", "js", "match", "count", "w", "ocount")}
    kl_top = np.full(B, -np.inf)
    kept = ("kl", "js", "w") if settings.get("_per_question", True) else ("kl",)
    for stat in kept:
        for part in ("n", "d", "d2"):
            acc[f"q_{stat}_{part}"] = np.zeros(data.n)
    chunk = min(B, _REPLICATE_CHUNK)
    # one block of questions at a time (its answer matrix S is P x slots), all replicates for it
    for blk in _participant_blocks(data, ans, P, point, settings, chunk):
        for b0 in range(0, B, chunk):
            b1 = min(B, b0 + chunk)
            _score_block(blk, weights[b0:b1], rectangular, P, settings, acc, kl_top, b0, b1)
    kl_sum = acc["kl"]
    if settings["zero_policy"] == "paper":
        kl_sum = kl_sum + acc["kl_inf"] * (kl_top + 1.0)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "kl": kl_sum / acc["count"],
            "js": acc["js"] / acc["count"],
            "match_rate": acc["match"] / acc["count"],
            "wasserstein": acc["w"] / acc["ocount"],
            "groups": B,
        }
        for stat, name in (("kl", "kl"), ("js", "js"), ("w", "wasserstein")):
            if stat not in kept:
                continue
            cnt = acc[f"q_{stat}_n"]
            out[f"q_{name}_n"] = cnt
            out[f"q_{name}_d"] = acc[f"q_{stat}_d"] / cnt
            out[f"q_{name}_d2"] = acc[f"q_{stat}_d2"] / cnt
    return out


@dataclass
class _Block:
    """Questions scored together in the participant bootstrap. Each question has `d` option
    slots: all its options if it is ordinal (Wasserstein needs them in order), otherwise only
    the options some participant chose (the others have a zero model share in every
    replicate, so their terms are constants, folded into the `const_*` vectors)."""

    ordinal: bool
    d: int
    S: np.ndarray  # (P, d*m) float32: S[j, slot*m + l] = participant j's weight on that slot of question l
    has: np.ndarray  # (P, m) float32: participant j answered question l
    m: int  # questions
    alpha: np.float32  # smoothing scale 1 / (1 + k eps); a block has one option count k
    beta: np.float32  # eps / (1 + k eps)
    S_log_qs: np.ndarray  # (P, m): sum over slots of S * log(smoothed q)
    S_log_q0: np.ndarray | None  # (P, m): sum over slots of S * log q (0 where q = 0); exact policies only
    S_q_zero: np.ndarray | None  # (P, m): sum over slots of S * [q = 0]; exact policies only
    const_kl: np.ndarray  # (m,) smoothing-KL terms of the options outside the slots
    const_m: np.ndarray  # (m,) sum of m log m over the options outside the slots (m = q / 2)
    q_half: np.ndarray  # (d, m) q / 2 + tiny on the slots
    q_logq: np.ndarray  # (m,) sum q log q over all options
    cum_q: np.ndarray  # (d - 1, m) cumulative q (ordinal blocks)
    human_top: np.ndarray  # (d, m) bool, human top options on the slots
    human_top_n: np.ndarray  # (m,) human top options over all options
    subsets: np.ndarray  # (m, s) float32 subset membership
    qi: np.ndarray  # (m,) the questions' indices
    centre: dict  # stat -> (m,) float32 point estimates, subtracted before the per-question moments


def _participant_blocks(
    data: Data, ans: Answers, P: int, point: dict, settings: dict, chunk: int
) -> Iterator[_Block]:
    n, kmax = data.model.shape
    weight = ans.weight  # None: every entry weighs 1 (single choice), and no gathers are spent on it
    valid = np.arange(kmax)[None, :] < data.ks[:, None]
    slot_mask = np.where(data.ordinal[:, None], valid, data.model > 0)
    n_slots = slot_mask.sum(axis=1)
    entry_slot = (np.cumsum(slot_mask, axis=1) - 1)[ans.question, ans.option]
    # each question's entries are a contiguous run of the entry arrays: its first entry, once for
    # all blocks (a binary search per block in the 2M entries cost more than scoring them)
    first = np.concatenate([[0], np.cumsum(np.bincount(ans.question, minlength=n))])
    outside = valid & ~slot_mask
    # smoothing KL = sum_slots a log a - alpha * sum_o p_o log qs_o + const_kl (a = alpha p + beta)
    smoothing = settings["zero_policy"] == "smoothing"
    eps = settings["smoothing"] if smoothing else 1.0  # unused otherwise
    alpha_all = 1.0 / (1.0 + data.ks * eps)
    beta_all = eps * alpha_all
    log_qs = np.log(np.where(valid, (data.human + eps) * alpha_all[:, None], 1.0))
    const_kl = outside.sum(axis=1) * beta_all * np.log(beta_all) - beta_all * np.where(valid, log_qs, 0.0).sum(axis=1)
    if not smoothing:
        log_q0 = np.log(np.where(data.human > 0, data.human, 1.0))  # log q, 0 where q = 0
        q_zero = ((data.human == 0) & valid).astype(np.float64)
    const_m = -np.where(outside, entr(data.human / 2.0), 0.0).sum(axis=1)
    q_logq = -entr(data.human).sum(axis=1)
    human_top = top_sets(data.human, valid)
    subsets = _subset_columns(data).astype(np.float32)
    tiny = 1e-30
    # blocks share (ordinal, slots, options), so the smoothing constants are scalars
    key = (data.ordinal.astype(np.int64) * (kmax + 1) + n_slots) * (kmax + 1) + data.ks
    for value in np.flatnonzero(np.bincount(key)):
        sel_q = np.flatnonzero(key == value)
        flag, d, k = bool(data.ordinal[sel_q[0]]), int(n_slots[sel_q[0]]), int(data.ks[sel_q[0]])
        m_step = max(1, _BLOCK_ELEMENTS // (chunk * d))
        for s0 in range(0, len(sel_q), m_step):
            qi = sel_q[s0 : s0 + m_step]
            m = len(qi)
            opts = np.nonzero(slot_mask[qi])[1].reshape(m, d)  # option of each slot, per question
            rows = qi[:, None]
            # entries of these questions: each question is a contiguous run of the entry arrays
            starts = first[qi]
            lens = first[qi + 1] - starts
            e = np.arange(lens.sum()) + np.repeat(starts - (np.cumsum(lens) - lens), lens)
            local = np.repeat(np.arange(m), lens)
            flat = ans.participant[e] * (d * m) + entry_slot[e] * m + local
            w_e = None if weight is None else weight[e]
            S = np.bincount(flat, weights=w_e, minlength=P * d * m).astype(np.float32)
            pair = ans.participant[e] * m + local
            q_of_entry = (ans.question[e], ans.option[e])

            def per_participant(values: np.ndarray, pair=pair, w_e=w_e, q_of_entry=q_of_entry, m=m) -> np.ndarray:
                """(P, m): sum over participant j's answer weights of values[question, option]."""
                w = values[q_of_entry] if w_e is None else w_e * values[q_of_entry]
                return np.bincount(pair, weights=w, minlength=P * m).reshape(P, m).astype(np.float32)

            q = data.human[rows, opts]  # (m, d)
            yield _Block(
                ordinal=flag,
                d=d,
                S=S.reshape(P, d * m),
                has=(np.arange(P)[:, None] < ans.lengths[qi][None, :]).astype(np.float32),
                m=m,
                alpha=np.float32(1.0 / (1.0 + k * eps)),
                beta=np.float32(eps / (1.0 + k * eps)),
                S_log_qs=per_participant(log_qs),
                S_log_q0=None if smoothing else per_participant(log_q0),
                S_q_zero=None if smoothing else per_participant(q_zero),
                const_kl=const_kl[qi].astype(np.float32),
                const_m=const_m[qi].astype(np.float32),
                q_half=(q.T / 2.0 + tiny).astype(np.float32),
                q_logq=q_logq[qi].astype(np.float32),
                cum_q=np.cumsum(q.T, axis=0)[:-1].astype(np.float32),
                human_top=human_top[rows, opts].T.copy(),
                human_top_n=human_top[qi].sum(axis=1).astype(np.float32),
                subsets=subsets[qi],
                qi=qi,
                centre={s: np.nan_to_num(point[s][qi]).astype(np.float32) for s in ("kl", "js", "wasserstein")},
            )


def _score_block(
    blk: _Block,
    wc: np.ndarray,
    rectangular: bool,
    P: int,
    settings: dict,
    acc: dict,
    kl_top: np.ndarray,
    b0: int,
    b1: int,
) -> None:
    """Score one block of questions for the replicates b0..b1 and add to the accumulators."""
    d, m = blk.d, blk.m
    c = (wc @ blk.S).reshape(len(wc), d, m)  # weighted answer counts per (replicate, slot, question)
    if rectangular:
        inv: Any = np.float32(1.0 / P)
        inc = None
        p = c * inv
    else:
        tot = wc @ blk.has  # (b, m); 0 when none of the question's participants was drawn
        inc = (tot > 0).astype(np.float32)
        inv = (1.0 / np.where(tot > 0, tot, 1.0)).astype(np.float32)
        p = c * inv[:, None, :]
    tiny = np.float32(1e-30)
    t = p + tiny
    np.log(t, out=t)
    t *= p
    p_logp = t.sum(axis=1)
    kl_inf = None
    if settings["zero_policy"] == "smoothing":
        a = p * blk.alpha
        a += blk.beta
        t = np.log(a)
        t *= a
        kl = t.sum(axis=1) - blk.alpha * inv * (wc @ blk.S_log_qs) + blk.const_kl
    else:
        kl = p_logp - inv * (wc @ blk.S_log_q0)
        kl_inf = (wc @ blk.S_q_zero) > 0
        kl = np.where(kl_inf, np.float32(0.0), kl)
    # Jensen-Shannon divergence (nats) = sum m log m terms: (sum p log p + sum q log q) / 2 - sum m log m
    mid = p * np.float32(0.5)
    mid += blk.q_half
    t = np.log(mid)
    t *= mid
    jsd = (np.float32(0.5) * (p_logp + blk.q_logq) - t.sum(axis=1) - blk.const_m) * np.float32(1.0 / LN2)
    js = np.sqrt(np.maximum(jsd, np.float32(0.0)))
    top = c.max(axis=1, keepdims=True)
    model_top = c >= top - np.float32(_COUNT_TIE_TOLERANCE)
    n_top = model_top.view(np.uint8).sum(axis=1, dtype=np.uint8)  # bool sums are slow; d < 256
    model_top &= blk.human_top
    both = model_top.view(np.uint8).sum(axis=1, dtype=np.uint8)
    match = (both / (n_top * blk.human_top_n)).astype(np.float32)
    if inc is not None:
        kl *= inc
        js *= inc
        match *= inc
    sub = blk.subsets
    n_in = np.float64(b1 - b0) if inc is None else inc.sum(axis=0, dtype=np.float64)
    moments = [("js", js, "js")] if "q_js_n" in acc else []
    if settings["zero_policy"] != "paper":
        moments.append(("kl", kl, "kl"))
    for stat, values, name in moments:
        dev = values - blk.centre[name]
        if inc is not None:
            dev *= inc
        acc[f"q_{stat}_n"][blk.qi] += n_in
        acc[f"q_{stat}_d"][blk.qi] += dev.sum(axis=0, dtype=np.float64)
        acc[f"q_{stat}_d2"][blk.qi] += np.einsum("bm,bm->m", dev, dev, dtype=np.float64)
    acc["kl"][b0:b1] += kl @ sub
    acc["js"][b0:b1] += js @ sub
    acc["match"][b0:b1] += match @ sub
    count = inc @ sub if inc is not None else sub.sum(axis=0)[None, :]
    acc["count"][b0:b1] += count
    if kl_inf is not None:
        inf = kl_inf.astype(np.float32) if inc is None else kl_inf * inc
        acc["kl_inf"][b0:b1] += inf @ sub
        usable = ~kl_inf if inc is None else (~kl_inf) & (inc > 0)
        finite_max = np.where(usable, kl, -np.inf).max(axis=1)
        np.maximum(kl_top[b0:b1], finite_max, out=kl_top[b0:b1])
    if blk.ordinal:
        run = np.zeros((b1 - b0, m), dtype=np.float32)
        gap = np.zeros((b1 - b0, m), dtype=np.float32)
        for o in range(d - 1):
            run += p[:, o, :]
            gap += np.abs(run - blk.cum_q[o])
        gap *= np.float32(1.0 / (d - 1))
        if inc is not None:
            gap *= inc
        if "q_w_n" in acc:
            dev = gap - blk.centre["wasserstein"]
            if inc is not None:
                dev *= inc
            acc["q_w_n"][blk.qi] += n_in
            acc["q_w_d"][blk.qi] += dev.sum(axis=0, dtype=np.float64)
            acc["q_w_d2"][blk.qi] += np.einsum("bm,bm->m", dev, dev, dtype=np.float64)
        acc["w"][b0:b1] += gap @ sub
        acc["ocount"][b0:b1] += count
