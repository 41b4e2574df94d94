"""Structure fidelity (metrics/cultural_alignment/structure.py) against independent computations on
the GSS 2022 respondents: scipy's Spearman and a written-out weighted Spearman per pair, numpy's
general eigen-solver for the PC1 share, scipy's Jensen-Shannon distance for the sex x age spread;
and the yardstick's calibration: a "simulator" that is a random sample of P real respondents lands
inside the yardstick interval about 95% of the time."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import spearmanr

from culturesim.metrics.cultural_alignment import structure_fidelity
from culturesim.metrics.cultural_alignment.structure import (
    MIN_GROUP_ANSWERS,
    MIN_HUMAN_PAIR_N,
    MIN_PARTICIPANT_PAIR_N,
    MIN_PARTICIPANT_PAIR_SHARE,
    spearman_matrix,
)

from structure_data import items_frame, matrix, respondents_frame


@pytest.fixture(scope="module")
def gss():
    """(answers of the ordinal GSS 2022 items, option counts, weights, "sex/age" labels)."""
    people = respondents_frame("US")
    items = items_frame("US")
    ordinal = items[items["ordinal"]]
    answers = matrix(people, list(ordinal["id"]))
    k = ordinal["options"].map(len).to_numpy()
    groups = [f"{s}/{a}" if isinstance(s, str) and isinstance(a, str) else None
              for s, a in zip(people["sex"], people["age_group"])]
    return answers, k, people["weight"].to_numpy(dtype=float), groups


def _most_answered(answers: np.ndarray, n: int) -> np.ndarray:
    return np.argsort(-(answers >= 0).sum(axis=0), kind="stable")[:n]


def weighted_spearman(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> float:
    """Written out: among those who answered both, each answer's weighted mid-rank (weight below
    its category plus half the category's weight), then the weighted Pearson correlation."""
    keep = (a >= 0) & (b >= 0)
    a, b, w = a[keep], b[keep], w[keep]

    def ranks(v: np.ndarray) -> np.ndarray:
        out = np.empty(len(v))
        for c in np.unique(v):
            out[v == c] = w[v < c].sum() + w[v == c].sum() / 2.0
        return out

    ra, rb = ranks(a), ranks(b)
    ma, mb = np.sum(w * ra) / w.sum(), np.sum(w * rb) / w.sum()
    cov = np.sum(w * (ra - ma) * (rb - mb))
    va, vb = np.sum(w * (ra - ma) ** 2), np.sum(w * (rb - mb) ** 2)
    return float(cov / math.sqrt(va * vb)) if va > 0 and vb > 0 else float("nan")


def test_correlations_match_scipy_and_the_written_out_weighted_formula(gss):
    answers, k, w, _ = gss
    cols = _most_answered(answers, 8).tolist() + list(range(8))  # common items and the first items
    sub, ks = answers[:, cols], k[cols]
    r_w, n = spearman_matrix(sub, ks, w)
    r_u, _ = spearman_matrix(sub, ks)
    checked = 0
    for i, j in itertools.combinations(range(len(cols)), 2):
        both = (sub[:, i] >= 0) & (sub[:, j] >= 0)
        assert n[i, j] == both.sum()
        if both.sum() < 3:
            continue
        rho = spearmanr(sub[both, i], sub[both, j]).statistic
        if np.isnan(rho):
            assert np.isnan(r_u[i, j])
            continue
        assert r_u[i, j] == pytest.approx(rho, abs=1e-12)
        assert r_w[i, j] == pytest.approx(weighted_spearman(sub[:, i], sub[:, j], w), abs=1e-12)
        checked += 1
    assert checked >= 50
    assert not np.allclose(r_w[np.isfinite(r_w)], r_u[np.isfinite(r_u)])  # the weights matter


def test_statistics_match_an_independent_computation(gss):
    """Constraint, PC1 share and distance recomputed from scratch with the module's stated rules."""
    answers, k, w, _ = gss
    cols = _most_answered(answers, 14)
    human, ks = answers[:, cols], k[cols]
    rng = np.random.default_rng(7)
    sim = human[rng.choice(len(human), 300, p=w / w.sum())]
    out = structure_fidelity(sim, human, ks, human_weights=w, replicates=0)
    P = len(sim)
    need = max(MIN_PARTICIPANT_PAIR_N, math.ceil(MIN_PARTICIPANT_PAIR_SHARE * P))
    m = len(cols)
    r_h = np.full((m, m), np.nan)
    r_s = np.full((m, m), np.nan)
    pairs = []
    for i, j in itertools.combinations(range(m), 2):
        both_h = (human[:, i] >= 0) & (human[:, j] >= 0)
        both_s = (sim[:, i] >= 0) & (sim[:, j] >= 0)
        r_h[i, j] = r_h[j, i] = weighted_spearman(human[:, i], human[:, j], w)
        r_s[i, j] = r_s[j, i] = spearmanr(sim[both_s, i], sim[both_s, j]).statistic if both_s.sum() > 2 else np.nan
        if both_h.sum() >= MIN_HUMAN_PAIR_N and both_s.sum() >= need and np.isfinite(r_h[i, j]) and np.isfinite(r_s[i, j]):
            pairs.append((i, j))
    assert out["n_pairs"] == len(pairs) > 20
    h = np.array([r_h[p] for p in pairs])
    s = np.array([r_s[p] for p in pairs])
    assert out["constraint_human"] == pytest.approx(np.mean(np.abs(h)), abs=1e-12)
    assert out["constraint_simulated"] == pytest.approx(np.mean(np.abs(s)), abs=1e-12)
    assert out["distance_simulated"] == pytest.approx(np.sqrt(np.mean((s - h) ** 2)), abs=1e-12)

    def pc1(r: np.ndarray) -> float:
        used = sorted({i for p in pairs for i in p})
        full = np.eye(m)
        for i, j in pairs:
            full[i, j] = full[j, i] = r[i, j]
        eig = np.clip(np.linalg.eig(full[np.ix_(used, used)])[0].real, 0.0, None)
        return float(eig.max() / eig.sum())

    assert out["pc1_share_human"] == pytest.approx(pc1(r_h), abs=1e-10)
    assert out["pc1_share_simulated"] == pytest.approx(pc1(r_s), abs=1e-10)
    assert out["n_items"] == len({i for p in pairs for i in p})


def test_group_spread_matches_scipy_jensen_shannon(gss):
    answers, k, w, groups = gss
    cols = _most_answered(answers, 6)
    sub, ks = answers[:, cols], k[cols]
    out = structure_fidelity(sub[:400], sub, ks, human_weights=w, simulated_groups=groups[:400], human_groups=groups,
                             replicates=0)
    labels = sorted({g for g in groups if g is not None})

    def spread(x: np.ndarray, g: list, weights: np.ndarray) -> float:
        per_item = []
        for j in range(x.shape[1]):
            answered = x[:, j] >= 0
            overall = np.bincount(x[answered, j], weights[answered], ks[j])
            dists = []
            for label in labels:
                cell = answered & np.array([lab == label for lab in g])
                if cell.sum() >= MIN_GROUP_ANSWERS:
                    dist = np.bincount(x[cell, j], weights[cell], ks[j])
                    dists.append(jensenshannon(dist / dist.sum(), overall / overall.sum(), base=2))
            if len(dists) >= 2:
                per_item.append(np.mean(dists))
        return float(np.mean(per_item))

    assert out["group_spread_human"] == pytest.approx(spread(sub, groups, w), abs=1e-9)
    assert out["group_spread_simulated"] == pytest.approx(spread(sub[:400], groups[:400], np.ones(400)), abs=1e-9)


def _coverage(gss, participants: int, trials: int, replicates: int, items: int) -> dict[str, float]:
    answers, k, w, groups = gss
    cols = _most_answered(answers, items)
    human, ks = answers[:, cols], k[cols]
    inside = {s: 0 for s in ("constraint", "pc1_share", "distance", "group_spread")}
    for trial in range(trials):
        draw = np.random.default_rng(10_000 + trial).choice(len(human), participants, p=w / w.sum())
        out = structure_fidelity(human[draw], human, ks, human_weights=w, replicates=replicates, seed=trial,
                                 simulated_groups=[groups[i] for i in draw], human_groups=groups)
        for s in inside:
            lo, hi = out[f"{s}_yardstick_ci_low"], out[f"{s}_yardstick_ci_high"]
            inside[s] += lo <= out[f"{s}_simulated"] <= hi
    return {s: n / trials for s, n in inside.items()}


def test_yardstick_holds_a_random_sample_of_real_respondents(gss):
    """Seeded: 20 simulated runs, each P = 80 real respondents drawn by weight."""
    coverage = _coverage(gss, participants=80, trials=20, replicates=60, items=12)
    assert all(c >= 0.8 for c in coverage.values()), coverage


@pytest.mark.slow
def test_yardstick_coverage_is_about_95_percent(gss):
    coverage = _coverage(gss, participants=150, trials=100, replicates=200, items=20)
    assert all(0.85 <= c <= 1.0 for c in coverage.values()), coverage


def test_unanimous_items_are_named_and_leave_no_pair(gss):
    answers, k, w, _ = gss
    cols = _most_answered(answers, 5)
    human, ks = answers[:, cols], k[cols]
    sim = human[:200].copy()
    sim[:, 0] = 1
    out = structure_fidelity(sim, human, ks, human_weights=w, item_ids=list("abcde"), replicates=0,
                             return_matrices=True)
    assert out["unanimous_items"] == ["a"]
    assert not any(out["pairs"][0])
    assert out["n_pairs"] == 6  # the other four items' pairs


def test_same_seed_same_numbers_and_intervals_bracket_sensibly(gss):
    answers, k, w, _ = gss
    cols = _most_answered(answers, 8)
    human, ks = answers[:, cols], k[cols]
    sim = human[np.random.default_rng(3).choice(len(human), 120, p=w / w.sum())]
    a = structure_fidelity(sim, human, ks, human_weights=w, replicates=40, seed=5)
    b = structure_fidelity(sim, human, ks, human_weights=w, replicates=40, seed=5)
    assert a == b
    for s in ("constraint", "pc1_share", "distance"):
        assert a[f"{s}_simulated_ci_low"] <= a[f"{s}_simulated"] <= a[f"{s}_simulated_ci_high"], s
        assert a[f"{s}_yardstick_ci_low"] <= a[f"{s}_yardstick"] <= a[f"{s}_yardstick_ci_high"], s
    # few participants inflate mean |r|: the yardstick sits above the humans' own constraint
    assert a["constraint_yardstick"] > a["constraint_human"]


@pytest.mark.parametrize("kwargs, message", [
    ({"simulated": [[0, 5]]}, "outside 0..2"),
    ({"simulated": [[0.5, 1]]}, "non-integer"),
    ({"simulated": [0, 1]}, "one row per person"),
    ({"human_weights": [1.0, -1.0]}, "weight -1.0"),
    ({"num_options": [3, 1]}, "num_options"),
    ({"ordinal": [True]}, "1 flags for 2 items"),
    ({"simulated_groups": ["a"] * 3}, "3 labels for 1 people"),
    ({"confidence": 1.5}, "confidence: 1.5"),
])
def test_bad_inputs_are_refused_by_name(kwargs, message):
    args = {"simulated": [[0, 1]], "human": [[0, 1], [1, 2]], "num_options": [3, 3]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        structure_fidelity(args.pop("simulated"), args.pop("human"), args.pop("num_options"), **args)
