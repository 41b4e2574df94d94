"""Structure fidelity: do simulated participants reproduce how real people's answers hang together?

Every marginal score (KL, JS, Wasserstein) looks at one question at a time. A simulator can match
every marginal and still be wrong about belief systems: real people who favour one policy tend to
favour some others, but only loosely (Barrie & Cerina 2026 find a mean absolute inter-item
correlation of 0.144 over 52 GSS 2024 attitude items, and every one of 28 LLMs above it, 0.167 to
0.456). This module compares the correlation structure of a run's participants with that of the
survey's respondents, and puts each number beside the same number for a random human sample of the
run's size (the *yardstick*), because P simulated participants give noisy correlations even when
the simulator is perfect.

Correlations: weighted Spearman, pairwise complete. For each pair of ordinal items, the people
who answered both get, per item, the weighted mid-rank of their answer category among those
people (weight below the category + half its weight) and the two scores' weighted Pearson
correlation is taken. Unweighted, this is exactly ``scipy.stats.spearmanr`` on the pair's
complete cases. Chosen over polychoric correlation because it is exact and closed-form (no
latent-normal assumption, no iterative fit that fails on sparse tables, which a few dozen
simulated participants produce all the time) and fast: every pair's weighted contingency table
comes from one matrix product of the one-hot answers, and the ranks and moments from sums over
those tables (``spearman_matrix``), so 500 participants x 300 items take well under a second.

Statistics, over the pairs eligible on both sides (answered by at least ``MIN_HUMAN_PAIR_N``
respondents and by at least ``MIN_PARTICIPANT_PAIR_SHARE`` of the participants, correlation
defined on both sides, i.e. neither item answered the same way by everyone in the pair):

- ``constraint``: the mean absolute correlation (Converse's "constraint").
- ``pc1_share``: the first principal component's share of the item correlation matrix. The
  pairwise-complete matrix (pairs that are not eligible set to 0) need not be positive
  semi-definite; its negative eigenvalues are clipped to 0 and the share is the largest eigenvalue
  over the sum of the clipped ones.
- ``distance``: the root mean square difference between the simulated and human correlations over
  the eligible pairs (equal to the Frobenius norm of the difference divided by sqrt(2 x pairs)).
- ``group_spread``: where both sides carry sex and age group, the mean over items of the mean
  Jensen-Shannon distance between each sex x age cell's answer distribution and the item's overall
  distribution (cells with fewer than ``MIN_GROUP_ANSWERS`` answers to an item left out).

Intervals, seeded: the simulated statistic's percentile interval from resampling participants with
replacement, moved so that it is centred where the resamples' mean sits relative to the run's value
(resampling adds noise, which inflates mean |r|, the distance and the spread); the yardstick's from ``replicates`` random samples of P respondents drawn with
probability proportional to their weight. A human sample has item non-response and split ballots
where a simulator answers every item, so each yardstick pair's deviation from the full-sample
correlation is rescaled by sqrt(respondents who answered the pair in the sample / participants who
answered it in the run): the yardstick has the run's per-pair sample size (to first order, a
correlation's sampling error scales with 1/sqrt(n)). The yardstick leaves out the human matrix's
own sampling error (the samples come from the same respondents), small beside P participants'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import rel_entr

from .bootstrap import one_blas_thread

__all__ = [
    "MIN_GROUP_ANSWERS",
    "MIN_HUMAN_PAIR_N",
    "MIN_PARTICIPANT_PAIR_N",
    "MIN_PARTICIPANT_PAIR_SHARE",
    "STRUCTURE_GLOSSARY",
    "STRUCTURE_REPLICATES",
    "STRUCTURE_STATS",
    "STRUCTURE_VERSION",
    "group_spread",
    "pc1_share",
    "spearman_matrix",
    "structure_fidelity",
]

#: Bumped whenever a number this module returns could change for the same input.
STRUCTURE_VERSION = "1.0.0"
#: A pair enters only if at least this many respondents answered both items (a correlation of
#: 200 people has a standard error of about 0.07 at r = 0).
MIN_HUMAN_PAIR_N = 200
#: ... and at least this share of the run's participants answered both ...
MIN_PARTICIPANT_PAIR_SHARE = 0.5
#: ... and at least this many of them (a correlation needs some people).
MIN_PARTICIPANT_PAIR_N = 10
#: Resamples for the participant interval and random human samples for the yardstick.
STRUCTURE_REPLICATES = 100
#: A sex x age cell with fewer answers to an item than this is left out of that item's spread.
MIN_GROUP_ANSWERS = 10
#: The statistics compared, in report order.
STRUCTURE_STATS = ("constraint", "pc1_share", "distance", "group_spread")

#: One line per output key; ``<stat>`` is one of STRUCTURE_STATS.
STRUCTURE_GLOSSARY: dict[str, str] = {
    "constraint": "mean absolute weighted Spearman correlation over the eligible item pairs (belief-system constraint); "
                  "the humans' is the target, above it = over-constrained",
    "pc1_share": "share of the first principal component in the item correlation matrix (non-eligible pairs 0, "
                 "negative eigenvalues clipped to 0): how much one dimension organises the answers",
    "distance": "root mean square difference between the simulated and the human correlations over the eligible pairs "
                "(= Frobenius norm / sqrt(2 x pairs)), lower is better",
    "group_spread": "mean over items of the mean Jensen-Shannon distance (base 2) between each sex x age cell's answers "
                    "and the item's overall answers: how much the groups differ",
    "<stat>_human": "the statistic on all respondents (weighted)",
    "<stat>_simulated": "the statistic on the run's participants",
    "<stat>_simulated_ci_low": "lower end of the percentile interval from resampling participants",
    "<stat>_simulated_ci_high": "upper end of that interval",
    "<stat>_yardstick": "mean of the statistic over random samples of P respondents drawn by weight: what a perfect "
                        "simulator of this size scores",
    "<stat>_yardstick_ci_low": "lower end of the yardstick's percentile interval (random human samples of the run's size)",
    "<stat>_yardstick_ci_high": "upper end of that interval",
    "n_items": "ordinal items in at least one eligible pair",
    "n_pairs": "item pairs eligible on both sides",
    "participants": "participants with at least one answer to a compared item",
    "respondents": "respondents with at least one answer to a compared item",
}


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _answers(values: Any, what: str, num_options: np.ndarray) -> np.ndarray:
    """An (people x items) int matrix, -1 where not answered; every answer a valid option index."""
    arr = np.asarray(values)
    if arr.ndim != 2 or arr.shape[1] != len(num_options):
        raise ValueError(f"{what}: shape {arr.shape}; give one row per person and one column per item "
                         f"({len(num_options)} items), -1 where not answered")
    if arr.dtype.kind == "f":
        if np.any(np.isfinite(arr) & (arr != np.round(arr))):
            raise ValueError(f"{what}: non-integer answers; answers are 0-based option indices, -1 (or NaN) when missing")
        arr = np.where(np.isnan(arr), -1, arr)
    elif arr.dtype.kind not in "iu":
        raise ValueError(f"{what}: dtype {arr.dtype}; answers are 0-based int option indices, -1 when missing")
    arr = arr.astype(np.int64)
    bad = (arr < -1) | (arr >= num_options[None, :])
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"{what}: person {r}, item {c} has answer {arr[r, c]}, outside 0..{num_options[c] - 1} "
                         "(-1 = not answered)")
    return arr


def _weights(values: Any, n: int) -> np.ndarray:
    if values is None:
        return np.ones(n)
    w = np.asarray(values, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"human_weights: shape {w.shape}, expected ({n},): one weight per respondent")
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        i = int(np.flatnonzero(~np.isfinite(w) | (w <= 0))[0])
        raise ValueError(f"human_weights: respondent {i} has weight {w[i]}; weights must be finite and > 0 "
                         "(leave respondents without a weight out)")
    return w


def _groups(values: Any, n: int, what: str) -> list[Any] | None:
    if values is None:
        return None
    groups = list(values)
    if len(groups) != n:
        raise ValueError(f"{what}: {len(groups)} labels for {n} people; give one label (or None) per person")
    return groups


# --------------------------------------------------------------------------------------
# Correlations
# --------------------------------------------------------------------------------------


def _layout(num_options: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start column of each item's block in the one-hot layout, and each column's item."""
    starts = np.concatenate([[0], np.cumsum(num_options)[:-1]]).astype(np.int64)
    return starts, np.repeat(np.arange(len(num_options)), num_options)


def _one_hot(answers: np.ndarray, starts: np.ndarray, width: int, dtype: Any) -> np.ndarray:
    n = answers.shape[0]
    x = np.zeros((n, width + 1), dtype=dtype)  # the last column swallows the missing answers
    cols = np.where(answers >= 0, answers + starts[None, :], width)
    x[np.arange(n)[:, None], cols] = 1
    return x[:, :width]


def _runs(k: np.ndarray) -> list[tuple[int, int, int]]:
    """(first column, items, options) of each run of consecutive items with the same option count."""
    out, col, i = [], 0, 0
    while i < len(k):
        j = i
        while j < len(k) and k[j] == k[i]:
            j += 1
        out.append((col, j - i, int(k[i])))
        col += (j - i) * int(k[i])
        i = j
    return out


def _block_rows(a: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Sum the rows of ``a`` within each item's block (items x columns). A reshape per run of equal
    option counts: about ten times faster than ``np.add.reduceat`` when the items are sorted by
    option count (``structure_fidelity`` sorts them), and right in any order."""
    return np.concatenate([a[c:c + n * kk].reshape(n, kk, -1).sum(axis=1) for c, n, kk in _runs(k)])


def _block_cols(a: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Sum the columns of ``a`` within each item's block."""
    return np.concatenate([a[:, c:c + n * kk].reshape(a.shape[0], n, kk).sum(axis=2) for c, n, kk in _runs(k)], axis=1)


def spearman_matrix(answers: np.ndarray, num_options: Sequence[int], weights: np.ndarray | None = None,
                    fast: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise-complete weighted Spearman correlations of every pair of items, and the joint counts.

    ``answers`` (people x items, -1 missing) and ``num_options`` as in ``structure_fidelity``.
    Returns (r, n): r[i, j] the correlation (NaN where fewer than 2 people answered both or an item
    has one answer among them; 1 on the diagonal), n[i, j] the people who answered both
    (unweighted). How: C = X' diag(w) X over the one-hot answers X holds every pair's weighted
    contingency table. Summing C over a block of columns gives, for each category a of item i, its
    weight among the people who also answered item j (row[a, j]); a cumulative sum within i's block
    gives the categories' mid-rank scores in that pair (score[a, j]); the pair's weighted moments
    are sums of row x score (means, variances) and of C x score x score (the cross moment), each
    a block sum. ``fast``: the tables and the cross moment's D x D step in float32 (for the
    resamples: half the memory traffic; sums over at most a few thousand people lose about 1e-6).
    """
    k = np.asarray(num_options, dtype=np.int64)
    order = np.argsort(k, kind="stable")
    back = np.argsort(order)
    starts, _ = _layout(k[order])
    x = _one_hot(np.asarray(answers)[:, order], starts, int(k.sum()), np.float32 if fast else np.float64)
    r, n = _spearman(x, k[order], None if weights is None else np.asarray(weights, dtype=float))
    return r[np.ix_(back, back)], n[np.ix_(back, back)]


def _spearman(x: np.ndarray, k: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``spearman_matrix`` on the one-hot answers ``x`` (its dtype is the tables')."""
    starts, col_item = _layout(k)
    dtype = x.dtype
    if weights is not None:
        x_weighted = x * np.asarray(weights, dtype=float).astype(dtype)[:, None]
    else:
        x_weighted = x
    c = x_weighted.T @ x  # every pair's weighted contingency table, in ``dtype``
    # C is symmetric, so summing its rows over item j's block gives row[a, j] transposed
    row = _block_rows(c, k).T.astype(np.float64)  # weight of category a among those who answered j
    total = _block_rows(row, k)  # total[i, j]: weight of those who answered both
    if weights is None:
        counts = np.rint(total).astype(np.int64)
    else:
        answered = _block_cols(x, k)  # 1 where the item was answered
        counts = np.rint(answered.T @ answered).astype(np.int64)
    cum = np.cumsum(row, axis=0)
    before = np.vstack([np.zeros((1, len(k))), cum[starts[1:] - 1]])  # cumulative weight before each block
    score = cum - row / 2.0 - before[col_item]  # score[a, j]: mid-rank of category a in the pair (item(a), j)
    first = _block_rows(score * row, k)  # sum of w x score of item i's answer in pair (i, j)
    second = _block_rows(score * score * row, k)
    # cross[i, j] = sum over a in i, b in j of C[a, b] score[a, j] score[b, i]
    inner = _block_rows(c * score.astype(dtype)[:, col_item], k).astype(np.float64)  # inner[i, b]
    cross = _block_cols(inner * score.T, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        ms = first / total
        vs = second / total - ms * ms
        cov = cross / total - ms * ms.T
        tol = 1e-12 * np.maximum(total, 1.0) ** 2
        defined = (counts >= 2) & (vs > tol) & (vs.T > tol)
        r = np.where(defined, cov / np.sqrt(np.abs(vs * vs.T)), np.nan)
    r = np.clip(r, -1.0, 1.0)
    np.fill_diagonal(r, 1.0)
    return r, counts


def pc1_share(r: np.ndarray, pairs: np.ndarray) -> float | None:
    """The largest eigenvalue's share of the item correlation matrix, pairs not in ``pairs`` set to
    0 and negative eigenvalues clipped to 0 (a pairwise-complete matrix need not be PSD). Only
    items in at least one pair enter. None without pairs."""
    keep = pairs.any(axis=0) | pairs.any(axis=1)
    if not keep.any():
        return None
    full = pairs | pairs.T
    m = np.where(full, np.nan_to_num(r), 0.0)[np.ix_(keep, keep)]
    np.fill_diagonal(m, 1.0)
    eig = np.clip(np.linalg.eigvalsh(m), 0.0, None)
    return float(eig[-1] / eig.sum())


def _stats(r: np.ndarray, pairs: np.ndarray, reference: np.ndarray | None) -> dict[str, float | None]:
    """constraint, pc1_share and (with a reference) distance over the pairs defined in ``r``."""
    ok = pairs & np.isfinite(r)
    if not ok.any():
        return {"constraint": None, "pc1_share": None, "distance": None}
    vals = r[ok]
    out: dict[str, float | None] = {"constraint": float(np.mean(np.abs(vals))), "pc1_share": pc1_share(r, ok)}
    out["distance"] = None if reference is None else float(np.sqrt(np.mean((vals - reference[ok]) ** 2)))
    return out


# --------------------------------------------------------------------------------------
# Group spread
# --------------------------------------------------------------------------------------


def group_spread(answers: np.ndarray, num_options: Sequence[int], groups: Sequence[Any],
                 weights: np.ndarray | None = None, min_answers: int = MIN_GROUP_ANSWERS) -> float | None:
    """Mean over items of the mean JS distance (base 2) between each group's weighted answer
    distribution and the item's overall one (everyone who answered, group known or not); groups
    (None = unknown) with fewer than ``min_answers`` answers to an item are left out of it. None
    where no item has two groups with enough answers."""
    k = np.asarray(num_options, dtype=np.int64)
    starts, _ = _layout(k)
    g = _group_matrix(groups)
    if g is None:
        return None
    x = _one_hot(answers, starts, int(k.sum()), np.float64)
    return _spread(x, k, g, None if weights is None else np.asarray(weights, dtype=float), min_answers)


def _group_matrix(groups: Sequence[Any]) -> np.ndarray | None:
    """People x groups indicator (a row of zeros for an unknown group); None with fewer than 2 groups."""
    labels = sorted({g for g in groups if g is not None}, key=str)
    if len(labels) < 2:
        return None
    index = {g: i for i, g in enumerate(labels)}
    g = np.zeros((len(groups), len(labels)))
    for person, label in enumerate(groups):
        if label is not None:
            g[person, index[label]] = 1.0
    return g


def _spread(x: np.ndarray, k: np.ndarray, g: np.ndarray, weights: np.ndarray | None,
            min_answers: int = MIN_GROUP_ANSWERS) -> float | None:
    """``group_spread`` on the one-hot answers and the group indicator."""
    starts, col_item = _layout(k)
    w = np.ones(x.shape[0]) if weights is None else weights
    table = (g * w[:, None]).T @ x  # groups x columns, weighted
    n_table = np.add.reduceat(g.T @ x, starts, axis=1)  # groups x items, unweighted answers
    overall = w @ x
    item_total = np.add.reduceat(table, starts, axis=1)
    overall_total = np.add.reduceat(overall, starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = table / item_total[:, col_item]
        q = overall / overall_total[col_item]
    mid = 0.5 * (p + q[None, :])
    terms = np.nan_to_num(rel_entr(p, mid) + rel_entr(q[None, :], mid))
    js = np.sqrt(np.maximum(np.add.reduceat(terms, starts, axis=1) / (2.0 * np.log(2.0)), 0.0))
    enough = n_table >= min_answers
    per_item_n = enough.sum(axis=0)
    usable = per_item_n >= 2
    if not usable.any():
        return None
    per_item = np.where(enough, js, 0.0).sum(axis=0)[usable] / per_item_n[usable]
    return float(per_item.mean())


# --------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------


def _interval(values: list[float | None], confidence: float) -> tuple[float | None, float | None]:
    v = np.array([x for x in values if x is not None], dtype=float)
    if len(v) < 2:
        return None, None
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(v, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def _shifted_interval(values: list[float | None], point: float | None,
                      confidence: float) -> tuple[float | None, float | None]:
    """The resamples' percentile interval moved by (point - resamples' mean). Resampling
    participants with replacement adds noise of its own, which raises mean |r|, the distance and
    the spread (all grow with noise); the shift removes that bias so the interval is the spread
    of the statistic over runs of this size around the run's own value, comparable with the
    yardstick's."""
    lo, hi = _interval(values, confidence)
    centre = _mean(values)
    if lo is None or hi is None or point is None or centre is None:
        return None, None
    return lo + point - centre, hi + point - centre


def _mean(values: list[float | None]) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else None


def structure_fidelity(
    simulated: Any,
    human: Any,
    num_options: Sequence[int],
    *,
    human_weights: Any = None,
    ordinal: Sequence[bool] | None = None,
    item_ids: Sequence[str] | None = None,
    simulated_groups: Sequence[Any] | None = None,
    human_groups: Sequence[Any] | None = None,
    replicates: int = STRUCTURE_REPLICATES,
    confidence: float = 0.95,
    seed: int = 0,
    min_human_pair_n: int = MIN_HUMAN_PAIR_N,
    min_participant_pair_share: float = MIN_PARTICIPANT_PAIR_SHARE,
    min_participant_pair_n: int = MIN_PARTICIPANT_PAIR_N,
    return_matrices: bool = False,
) -> dict[str, Any]:
    """Compare the run's correlation structure with the respondents', beside the yardstick.

    Args:
        simulated: (participants x items) 0-based option indices, -1 (or NaN) where not answered.
        human: (respondents x items), the same items in the same order.
        num_options: options per item.
        human_weights: one survey weight per respondent (default: all 1).
        ordinal: per item; only ordinal items are compared (default: all are).
        item_ids: names for the items (in messages and the optional matrices).
        simulated_groups / human_groups: a sex x age label per person (any hashable, None = unknown),
            for ``group_spread``; both needed, else it is None.
        replicates: participant resamples and yardstick samples (0: point estimates only).
        confidence: two-sided level of the percentile intervals.
        seed: seeds both; same inputs and seed, same numbers.
        min_human_pair_n, min_participant_pair_share, min_participant_pair_n: pair eligibility.
        return_matrices: add "items", "human_matrix", "simulated_matrix" and "pairs" (lists).

    Returns a flat dict of plain numbers (None where undefined): for each of STRUCTURE_STATS
    ``<stat>_human`` (distance: none, it is 0), ``<stat>_simulated`` with ``_ci_low/_ci_high`` and
    ``<stat>_yardstick`` with ``_ci_low/_ci_high``; ``n_items``, ``n_pairs``, ``participants``,
    ``respondents``, ``unanimous_items`` (ids of compared items every participant answered alike),
    ``settings`` and ``structure_version``. STRUCTURE_GLOSSARY defines every key.
    """
    k = np.asarray(list(num_options), dtype=np.int64)
    if k.ndim != 1 or len(k) == 0 or np.any(k < 2):
        raise ValueError(f"num_options: {list(num_options)!r}; give one count (>= 2) per item")
    ids = list(item_ids) if item_ids is not None else [f"item {i}" for i in range(len(k))]
    if len(ids) != len(k):
        raise ValueError(f"item_ids: {len(ids)} ids for {len(k)} items")
    sim = _answers(simulated, "simulated", k)
    hum = _answers(human, "human", k)
    w = _weights(human_weights, hum.shape[0])
    if ordinal is not None:
        if len(ordinal) != len(k):
            raise ValueError(f"ordinal: {len(ordinal)} flags for {len(k)} items")
        keep = np.array([bool(o) for o in ordinal])
    else:
        keep = np.ones(len(k), dtype=bool)
    if replicates < 0:
        raise ValueError(f"replicates: {replicates}; give 0 (no intervals) or more")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: {confidence}; give a level in (0, 1), e.g. 0.95")
    if not 0 <= min_participant_pair_share <= 1:
        raise ValueError(f"min_participant_pair_share: {min_participant_pair_share}; give a share in [0, 1]")
    sim_groups = _groups(simulated_groups, sim.shape[0], "simulated_groups")
    hum_groups = _groups(human_groups, hum.shape[0], "human_groups")
    k, sim, hum = k[keep], sim[:, keep], hum[:, keep]
    ids = [i for i, kept in zip(ids, keep) if kept]
    settings = {"replicates": replicates, "confidence": confidence, "seed": seed,
                "min_human_pair_n": min_human_pair_n, "min_participant_pair_share": min_participant_pair_share,
                "min_participant_pair_n": min_participant_pair_n, "min_group_answers": MIN_GROUP_ANSWERS,
                "correlation": "weighted Spearman, pairwise complete"}
    out: dict[str, Any] = {f"{s}_{side}": None for s in STRUCTURE_STATS
                           for side in ("human", "simulated", "simulated_ci_low", "simulated_ci_high",
                                        "yardstick", "yardstick_ci_low", "yardstick_ci_high")}
    del out["distance_human"]
    out.update({"n_items": 0, "n_pairs": 0, "participants": 0, "respondents": 0, "unanimous_items": [],
                "settings": settings, "structure_version": STRUCTURE_VERSION})
    if len(k) < 2:
        return out
    with one_blas_thread():  # small products: many threads busy-wait on a shared machine
        _compare(out, sim, hum, k, w, ids, sim_groups, hum_groups, settings, return_matrices)
    return out


def _compare(out: dict[str, Any], sim: np.ndarray, hum: np.ndarray, k: np.ndarray, w: np.ndarray, ids: list[str],
             sim_groups: list[Any] | None, hum_groups: list[Any] | None, settings: dict[str, Any],
             return_matrices: bool) -> None:
    """``structure_fidelity``'s work, filling ``out``: the items sorted by option count (for the
    fast block sums), the point estimates in float64, the replicates in float32."""
    order = np.argsort(k, kind="stable")
    back = np.argsort(order)
    k, sim, hum = k[order], sim[:, order], hum[:, order]
    starts, _ = _layout(k)
    x_sim = _one_hot(sim, starts, int(k.sum()), np.float64)
    x_hum = _one_hot(hum, starts, int(k.sum()), np.float64)
    r_h, n_h = _spearman(x_hum, k, w)
    r_s, n_s = _spearman(x_sim, k, None)
    p_total = sim.shape[0]
    need = max(settings["min_participant_pair_n"], int(np.ceil(settings["min_participant_pair_share"] * p_total)))
    upper = np.triu(np.ones_like(n_h, dtype=bool), 1)
    pairs = upper & (n_h >= settings["min_human_pair_n"]) & (n_s >= need) & np.isfinite(r_h) & np.isfinite(r_s)
    pairs = pairs | pairs.T  # symmetric from here on; statistics read the upper triangle
    in_pair = pairs.any(axis=0)
    pairs &= upper
    answered_sim = sim >= 0
    distinct = np.array([len(np.unique(col[col >= 0])) for col in sim.T])
    unanimous = np.flatnonzero((distinct == 1)[back])
    out["unanimous_items"] = [ids[i] for i in unanimous]
    out.update({"n_items": int(in_pair.sum()), "n_pairs": int(pairs.sum()),
                "participants": int(answered_sim[:, in_pair].any(axis=1).sum()),
                "respondents": int((hum[:, in_pair] >= 0).any(axis=1).sum())})
    human_stats = _stats(r_h, pairs, None)
    sim_stats = _stats(r_s, pairs, r_h)
    for s in ("constraint", "pc1_share"):
        out[f"{s}_human"] = human_stats[s]
    for s in ("constraint", "pc1_share", "distance"):
        out[f"{s}_simulated"] = sim_stats[s]
    g_sim = _group_matrix(sim_groups) if sim_groups is not None and hum_groups is not None else None
    g_hum = _group_matrix(hum_groups) if g_sim is not None and hum_groups is not None else None
    if g_sim is not None and g_hum is not None:
        out["group_spread_human"] = _spread(x_hum, k, g_hum, w)
        out["group_spread_simulated"] = _spread(x_sim, k, g_sim, None)
    if return_matrices:
        full = (pairs | pairs.T)[np.ix_(back, back)]
        out.update({"items": ids, "pairs": full.tolist(),
                    "human_matrix": _listed(r_h[np.ix_(back, back)]),
                    "simulated_matrix": _listed(r_s[np.ix_(back, back)])})
    replicates, confidence = settings["replicates"], settings["confidence"]
    if replicates == 0 or not pairs.any():
        return
    rng = np.random.default_rng(settings["seed"])
    probs = w / w.sum()
    n_sim_pair = np.maximum(n_s, 1)
    boot: dict[str, list[float | None]] = {s: [] for s in STRUCTURE_STATS}
    yard: dict[str, list[float | None]] = {s: [] for s in STRUCTURE_STATS}
    x_sim, x_hum = x_sim.astype(np.float32), x_hum.astype(np.float32)
    for _ in range(replicates):
        pick = rng.integers(0, p_total, p_total)
        r_b, _ = _spearman(x_sim[pick], k, None)
        for s, v in _stats(r_b, pairs, r_h).items():
            boot[s].append(v)
        draw = rng.choice(hum.shape[0], size=p_total, p=probs)
        r_d, n_d = _spearman(x_hum[draw], k, None)
        r_y = np.clip(r_h + (r_d - r_h) * np.sqrt(n_d / n_sim_pair), -1.0, 1.0)
        for s, v in _stats(r_y, pairs, r_h).items():
            yard[s].append(v)
        if g_sim is not None and g_hum is not None:
            boot["group_spread"].append(_spread(x_sim[pick], k, g_sim[pick], None))
            yard["group_spread"].append(_spread(x_hum[draw], k, g_hum[draw], None))
    for s in STRUCTURE_STATS:
        if s == "group_spread" and g_sim is None:
            continue
        out[f"{s}_simulated_ci_low"], out[f"{s}_simulated_ci_high"] = _shifted_interval(
            boot[s], out[f"{s}_simulated"], confidence)
        out[f"{s}_yardstick"] = _mean(yard[s])
        out[f"{s}_yardstick_ci_low"], out[f"{s}_yardstick_ci_high"] = _interval(yard[s], confidence)


def _listed(r: np.ndarray) -> list[list[float | None]]:
    return [[float(v) if np.isfinite(v) else None for v in row] for row in r]
