"""The cultural_alignment metric against independent computations.

Every number is recomputed here question by question with scipy (scipy.stats.entropy,
scipy.spatial.distance.jensenshannon, scipy.stats.wasserstein_distance) or by hand, and the
bootstraps are replayed from the same random stream with a plain float64 loop.
"""

from __future__ import annotations

import json
import itertools
import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy, multinomial, wasserstein_distance
from scipy.stats import t as student_t

from culturesim.metrics.cultural_alignment import compute_alignment, describe

# --------------------------------------------------------------------------------------
# Independent reference: one question at a time, scipy only
# --------------------------------------------------------------------------------------


def model_distribution(answers, k, weights=None):
    """Participant j's answer (an int or a list of ints) counts weights[j] (default 1), spread
    evenly over the options of a multiple choice answer."""
    counts = np.zeros(k)
    total = 0.0
    for j, a in enumerate(answers):
        w = 1.0 if weights is None else weights[j]
        chosen = a if isinstance(a, list) else [a]
        for o in chosen:
            counts[o] += w / len(chosen)
        total += w
    with np.errstate(invalid="ignore"):
        return counts / total, total


def kl_values(ps, qs, policy, eps=1e-3):
    if policy == "smoothing":
        return np.array([entropy(np.asarray(p) + eps, np.asarray(q) + eps) for p, q in zip(ps, qs)])
    raw = np.array([entropy(p, q) for p, q in zip(ps, qs)])
    if policy == "paper":
        finite = raw[np.isfinite(raw)]
        raw = np.where(np.isfinite(raw), raw, finite.max() + 1.0)
    return raw


def top(dist):
    dist = np.asarray(dist)
    return set(np.flatnonzero(dist >= dist.max() - 1e-9).tolist())


def match(p, q):
    m, h = top(p), top(q)
    return len(m & h) / (len(m) * len(h))


def reference_scores(ps, qs, ordinal, policy="smoothing"):
    kl = kl_values(ps, qs, policy)
    js = np.array([jensenshannon(p, q, base=2) for p, q in zip(ps, qs)])
    w = np.array(
        [
            wasserstein_distance(np.arange(len(q)), np.arange(len(q)), p, q) / (len(q) - 1) if o else np.nan
            for p, q, o in zip(ps, qs, ordinal)
        ]
    )
    mr = np.array([match(p, q) for p, q in zip(ps, qs)])
    return {"kl": kl, "js": js, "wasserstein": w, "match_rate": mr}


def random_case(rng, n, participants=20, zero_share=0.3, ragged=False, multi=False):
    ks = rng.integers(2, 12, n)
    refs, preds = [], []
    for k in ks:
        q = rng.dirichlet(np.ones(k))
        if rng.random() < zero_share:  # zero cells in the human distribution
            q[rng.integers(0, k)] = 0.0
            q /= q.sum()
        refs.append(q.tolist())
        m = rng.dirichlet(np.full(k, 0.5))
        size = int(rng.integers(1, participants + 1)) if ragged else participants
        answers = rng.choice(k, size=size, p=m).tolist()
        if multi:
            for j in range(len(answers)):
                if rng.random() < 0.3:
                    answers[j] = sorted(rng.choice(k, size=int(rng.integers(1, k + 1)), replace=False).tolist())
        preds.append(answers)
    ordinal = (rng.random(n) < 0.5).tolist()
    return preds, refs, ordinal


# --------------------------------------------------------------------------------------
# Per-question numbers
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["smoothing", "paper"])
@pytest.mark.parametrize("multi", [False, True])
def test_random_cases_match_scipy(policy, multi):
    rng = np.random.default_rng(7 + multi)
    preds, refs, ordinal = random_case(rng, 300, ragged=multi, multi=multi)
    r = compute_alignment(
        predictions=preds, references=refs, ordinal=ordinal, zero_policy=policy, bootstrap_samples=0,
        return_per_question=True,
    )
    ps = [model_distribution(a, len(q))[0] for a, q in zip(preds, refs)]
    ref = reference_scores(ps, refs, ordinal, policy)
    rows = r["per_question"]
    np.testing.assert_allclose([row["kl"] for row in rows], ref["kl"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose([row["js"] for row in rows], ref["js"], rtol=1e-9, atol=1e-12)
    w = [row["wasserstein"] if row["wasserstein"] is not None else np.nan for row in rows]
    np.testing.assert_allclose(w, ref["wasserstein"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose([row["match"] for row in rows], ref["match_rate"])
    for row, p in zip(rows, ps):
        np.testing.assert_allclose(row["model_distribution"], p, atol=1e-12)
        assert row["entropy"] == pytest.approx(entropy(p), abs=1e-12)
    assert r["kl_mean"] == pytest.approx(ref["kl"].mean(), rel=1e-12)
    assert r["js_mean"] == pytest.approx(ref["js"].mean(), rel=1e-12)
    assert r["wasserstein_mean"] == pytest.approx(np.nanmean(ref["wasserstein"]), rel=1e-12)
    assert r["match_rate"] == pytest.approx(ref["match_rate"].mean(), rel=1e-12)
    assert r["kl_n_infinite"] == int(np.isinf([entropy(p, q) for p, q in zip(ps, refs)]).sum()) > 0
    assert r["n_ordinal"] == sum(ordinal)


def test_probabilities_match_scipy_and_raise_policy():
    rng = np.random.default_rng(3)
    ks = rng.integers(2, 9, 200)
    probs = [rng.dirichlet(np.ones(k)).tolist() for k in ks]
    refs = [rng.dirichlet(np.ones(k)).tolist() for k in ks]  # no zero cells: exact KL finite
    ordinal = [True] * len(ks)
    r = compute_alignment(probabilities=probs, references=refs, ordinal=ordinal, zero_policy="raise",
                          bootstrap_samples=0, return_per_question=True)
    ref = reference_scores(probs, refs, ordinal, "raise")
    np.testing.assert_allclose([row["kl"] for row in r["per_question"]], ref["kl"], rtol=1e-10)
    np.testing.assert_allclose([row["js"] for row in r["per_question"]], ref["js"], rtol=1e-9)
    np.testing.assert_allclose([row["wasserstein"] for row in r["per_question"]], ref["wasserstein"], rtol=1e-10)
    assert r["model_input"] == "probabilities"
    # no participants and no human_n_effective: nothing is uncertain, so there is no interval
    assert r["distinct_answers_mean"] is None and r["kl_participant_ci_low"] is None
    assert r["kl_bc_mean"] == r["kl_mean"]  # probability vectors have no sampling bias


def test_hand_worked_example_from_the_card():
    # question 1: answers 0,0,0,1 -> p = (3/4, 1/4), human q = (0.6, 0.4)
    kl1 = 0.75 * math.log(0.75 / 0.6) + 0.25 * math.log(0.25 / 0.4)
    # question 2 (ordinal): answers 2,2,1,2 -> p = (0, 1/4, 3/4), q = (0.1, 0.2, 0.7); 0 log 0 = 0
    kl2 = 0.25 * math.log(0.25 / 0.2) + 0.75 * math.log(0.75 / 0.7)
    m1 = (0.675, 0.325)
    js1 = math.sqrt(
        0.5 * (0.75 * math.log2(0.75 / m1[0]) + 0.25 * math.log2(0.25 / m1[1]))
        + 0.5 * (0.6 * math.log2(0.6 / m1[0]) + 0.4 * math.log2(0.4 / m1[1]))
    )
    w2 = (abs(0.0 - 0.1) + abs(0.25 - 0.3)) / (3 - 1)  # |CDF gaps| at positions 0 and 1
    r = compute_alignment(
        predictions=[[0, 0, 0, 1], [2, 2, 1, 2]], references=[[0.6, 0.4], [0.1, 0.2, 0.7]],
        ordinal=[False, True], zero_policy="paper", bootstrap_samples=0, return_per_question=True,
    )
    assert kl1 == pytest.approx(0.049857, abs=1e-6) and kl2 == pytest.approx(0.107531, abs=1e-6)
    assert r["kl_mean"] == pytest.approx((kl1 + kl2) / 2, abs=1e-15)
    assert r["per_question"][0]["js"] == pytest.approx(js1, abs=1e-12)
    assert r["wasserstein_mean"] == pytest.approx(0.075, abs=1e-15) == w2
    assert r["match_rate"] == 1.0
    assert r["entropy_mean"] == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert (r["distinct_answers_mean"], r["unanimous_share"], r["participants_mean"]) == (2.0, 0.0, 4.0)


def test_zero_cells_by_hand():
    # the model picks option 2, which no human chose: exact KL is infinite
    p, q = [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]
    eps = 1e-3
    ps = [(x + eps) / (1 + 3 * eps) for x in p]
    qs = [(x + eps) / (1 + 3 * eps) for x in q]
    smoothed = sum(a * math.log(a / b) for a, b in zip(ps, qs))
    r = compute_alignment(probabilities=[p], references=[q], bootstrap_samples=0)
    assert r["kl_mean"] == pytest.approx(smoothed, rel=1e-12)
    assert r["kl_n_infinite"] == 1
    # the paper's rule: infinity -> largest finite KL of the call + 1
    finite = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    r = compute_alignment(
        probabilities=[p, [0.5, 0.5, 0.0]], references=[q, [0.25, 0.75, 0.0]], zero_policy="paper",
        bootstrap_samples=0, return_per_question=True,
    )
    assert [row["kl"] for row in r["per_question"]] == pytest.approx([finite + 1.0, finite])
    assert [row["kl_infinite"] for row in r["per_question"]] == [True, False]
    with pytest.raises(ValueError, match=r"question 0 \(id 'a'\).*infinite.*option 2"):
        compute_alignment(probabilities=[p], references=[q], zero_policy="raise", question_ids=["a"])
    with pytest.raises(ValueError, match="every question has an infinite KL"):
        compute_alignment(probabilities=[p], references=[q], zero_policy="paper")
    # zero cells in both distributions are fine and contribute nothing
    r = compute_alignment(probabilities=[[0.5, 0.5, 0.0]], references=[[0.5, 0.5, 0.0]], zero_policy="raise",
                          bootstrap_samples=0)
    assert r["kl_mean"] == 0.0 and r["js_mean"] == 0.0


def test_argmax_ties_are_shared():
    # model tie {0, 1} vs human {1}: half a match; human tie {0, 1} vs model {0}: half a match
    r = compute_alignment(
        predictions=[[0, 1], [0, 0, 1]], references=[[0.2, 0.5, 0.3], [0.5, 0.5]], bootstrap_samples=0,
        return_per_question=True,
    )
    assert [row["match"] for row in r["per_question"]] == [0.5, 0.5]
    assert r["per_question"][0]["model_top_options"] == [0, 1] and r["per_question"][0]["model_argmax"] == 0
    assert r["per_question"][1]["human_top_options"] == [0, 1]
    assert r["match_rate"] == 0.5


def test_multiple_choice_counts_each_option_one_over_len():
    r = compute_alignment(
        predictions=[[[0, 1], 1, [1, 2], [2]]], references=[[0.2, 0.5, 0.3]], bootstrap_samples=0,
        return_per_question=True,
    )
    row = r["per_question"][0]
    assert row["model_distribution"] == pytest.approx([0.5 / 4, 2.0 / 4, 1.5 / 4])
    assert row["distinct_answers"] == 4  # {0,1}, {1}, {1,2}, {2}
    assert r["unanimous_share"] == 0.0


def test_diversity():
    r = compute_alignment(
        predictions=[[1, 1, 1], [0, 1, 2], [2, 2, 0]], references=[[0.2, 0.5, 0.3]] * 3, bootstrap_samples=0
    )
    assert r["distinct_answers_mean"] == pytest.approx((1 + 3 + 2) / 3)
    assert r["unanimous_share"] == pytest.approx(1 / 3)
    expected = np.mean([0.0, math.log(3), entropy([1 / 3, 0, 2 / 3])])
    assert r["entropy_mean"] == pytest.approx(expected)
    assert r["human_entropy_mean"] == pytest.approx(entropy([0.2, 0.5, 0.3]))


def test_numpy_answer_matrix_is_accepted():
    rng = np.random.default_rng(1)
    matrix = rng.integers(0, 4, size=(50, 20))
    refs = [rng.dirichlet(np.ones(4)).tolist() for _ in range(50)]
    a = compute_alignment(predictions=matrix, references=refs, bootstrap_samples=50, seed=3)
    b = compute_alignment(predictions=matrix.tolist(), references=refs, bootstrap_samples=50, seed=3)
    assert a == b


# --------------------------------------------------------------------------------------
# Preference bias
# --------------------------------------------------------------------------------------


def demo(**groups):
    names = {"female": "sex", "male": "sex", "a18": "age", "a30": "age", "a50": "age"}
    label = {"a18": "18-29", "a30": "30-49", "a50": "50+"}
    return [
        {"group_type": names[g], "group": label.get(g, g), "distribution": d, "n": 100, "year": 2022}
        for g, d in groups.items()
    ]


def test_bias_profile_by_hand():
    references = [[0.7, 0.3], [0.2, 0.8], [0.5, 0.5], [0.4, 0.6], [0.1, 0.9]]
    predictions = [
        [0, 0, 1],  # model prefers 0, human 0: matched
        [0, 0, 0],  # model 0, human 1: mismatched
        [1, 1, 0],  # model 1, human tie {0, 1}: half matched
        [0, 1],  # model tie {0, 1}, human 1: half matched
        [1],  # no demographics
    ]
    demographics = [
        # option 0: female 0.8 > male 0.6 -> female; age: 18-29 0.5, 30-49 0.7, 50+ 0.9 -> 50+
        demo(female=[0.8, 0.2], male=[0.6, 0.4], a18=[0.5, 0.5], a30=[0.7, 0.3], a50=[0.9, 0.1]),
        # option 0: female 0.3 = male 0.3 -> tie; only one age group -> age not counted
        demo(female=[0.3, 0.7], male=[0.3, 0.7], a30=[0.5, 0.5]),
        # option 1: male 0.6 > female 0.4 -> male; age 18-29 0.7 = 30-49 0.7 > 50+ 0.2 -> tie
        demo(female=[0.6, 0.4], male=[0.4, 0.6], a18=[0.3, 0.7], a30=[0.3, 0.7], a50=[0.8, 0.2]),
        # options {0, 1} together have share 1 for everyone -> tie in both families
        demo(female=[0.5, 0.5], male=[0.2, 0.8], a18=[0.1, 0.9], a50=[0.6, 0.4]),
        [],
    ]
    dims = [["EVI"], ["EVI", "PDI"], ["PDI"], [], None]
    r = compute_alignment(
        predictions=predictions, references=references, demographics=demographics, value_dimensions=dims,
        bootstrap_samples=0, return_per_question=True,
    )
    assert [row["preferred_group_sex"] for row in r["per_question"]] == ["female", "tie", "male", "tie", None]
    assert [row["preferred_group_age"] for row in r["per_question"]] == ["50+", None, "tie", "tie", None]
    assert [row["match"] for row in r["per_question"]][:4] == [1.0, 0.0, 0.5, 0.5]
    bp = r["bias_profile"]
    assert bp["n"] == {"sex": 4, "age": 3}
    assert bp["all"]["sex"] == {"female": 1.0, "male": 1.0, "tie": 2.0}
    assert bp["matched"]["sex"] == {"female": 1.0, "male": 0.5, "tie": 0.5}
    assert bp["mismatched"]["sex"] == {"female": 0.0, "male": 0.5, "tie": 1.5}
    assert bp["all"]["age"] == {"18-29": 0.0, "30-49": 0.0, "50+": 1.0, "tie": 2.0}
    assert bp["matched"]["age"] == {"18-29": 0.0, "30-49": 0.0, "50+": 1.0, "tie": 1.0}
    assert r["n_with_demographics"] == 4
    evi = r["per_dimension"]["EVI"]["bias_profile"]
    assert evi["all"]["sex"] == {"female": 1.0, "male": 0.0, "tie": 1.0}
    assert evi["mismatched"]["sex"] == {"female": 0.0, "male": 0.0, "tie": 1.0}
    assert evi["all"]["age"] == {"18-29": 0.0, "30-49": 0.0, "50+": 1.0, "tie": 0.0}
    pdi = r["per_dimension"]["PDI"]["bias_profile"]
    assert pdi["all"]["sex"] == {"female": 0.0, "male": 1.0, "tie": 1.0}
    assert set(r["per_dimension"]) == {"EVI", "PDI"}


# --------------------------------------------------------------------------------------
# Per-dimension aggregates and output shape
# --------------------------------------------------------------------------------------


def test_per_dimension_means_and_json():
    rng = np.random.default_rng(11)
    preds, refs, ordinal = random_case(rng, 120)
    tags = ["EVI", "IDV", "IVR", "LTO", "MAS", "PDI", "UAI", "TDI", "USI"]
    dims = [sorted(set(rng.choice(tags, size=int(rng.integers(0, 3))).tolist())) for _ in preds]
    r = compute_alignment(predictions=preds, references=refs, ordinal=ordinal, value_dimensions=dims,
                          bootstrap_samples=100, question_ids=[f"q{i}" for i in range(120)],
                          return_per_question=True)
    json.dumps(r, allow_nan=False)  # plain numbers only, no NaN or infinity
    ps = [model_distribution(a, len(q))[0] for a, q in zip(preds, refs)]
    ref = reference_scores(ps, refs, ordinal)
    for dim, stats in r["per_dimension"].items():
        sel = np.array([dim in d for d in dims])
        assert stats["n_questions"] == sel.sum()
        assert stats["kl_mean"] == pytest.approx(ref["kl"][sel].mean(), rel=1e-12)
        assert stats["js_mean"] == pytest.approx(ref["js"][sel].mean(), rel=1e-12)
        assert stats["match_rate"] == pytest.approx(ref["match_rate"][sel].mean(), rel=1e-12)
        w = ref["wasserstein"][sel]
        if np.isfinite(w).any():
            assert stats["wasserstein_mean"] == pytest.approx(np.nanmean(w), rel=1e-12)
        else:
            assert stats["wasserstein_mean"] is None and stats["wasserstein_ci_low"] is None
    assert r["per_question"][5]["id"] == "q5"
    # every output key, top level, per dimension and per question, has a glossary line
    for key in list(r) + list(next(iter(r["per_dimension"].values()))):
        assert describe(key), f"{key} is not in OUTPUT_GLOSSARY"
    for key in ("kl_mean", "kl_bc_mean", "floor_kl_mean", "uniform_js_mean", "normalised_wasserstein",
                "normalised_kl_participant_ci_low", "js_participant_se"):
        assert key in r


# --------------------------------------------------------------------------------------
# Bootstraps, replayed from the same random streams
# --------------------------------------------------------------------------------------


def percentile_interval(values, confidence=0.95):
    values = np.asarray(values)
    values = values[np.isfinite(values)]
    tail = (1 - confidence) / 2 * 100
    return np.percentile(values, [tail, 100 - tail])


def test_question_bootstrap_replayed():
    rng = np.random.default_rng(5)
    preds, refs, ordinal = random_case(rng, 60)
    dims = [["EVI"] if i % 3 == 0 else ["PDI"] for i in range(60)]
    B, seed = 400, 17
    r = compute_alignment(predictions=preds, references=refs, ordinal=ordinal, value_dimensions=dims,
                          bootstrap_samples=B, participant_bootstrap_samples=0, seed=seed, confidence=0.9)
    ps = [model_distribution(a, len(q))[0] for a, q in zip(preds, refs)]
    ref = reference_scores(ps, refs, ordinal)
    draws = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0]).integers(0, 60, size=(B, 60))
    evi = np.array([d == ["EVI"] for d in dims])
    ordinal = np.array(ordinal)
    for stat, key in [("kl", "kl"), ("js", "js"), ("match_rate", "match_rate")]:
        reps = ref[stat][draws].mean(axis=1)
        np.testing.assert_allclose([r[f"{key}_ci_low"], r[f"{key}_ci_high"]], percentile_interval(reps, 0.9),
                                   rtol=1e-5)
        sub = [ref[stat][d[evi[d]]].mean() if evi[d].any() else np.nan for d in draws]
        stats = r["per_dimension"]["EVI"]
        np.testing.assert_allclose([stats[f"{key}_ci_low"], stats[f"{key}_ci_high"]],
                                   percentile_interval(sub, 0.9), rtol=1e-5)
    reps = [np.nanmean(ref["wasserstein"][d[ordinal[d]]]) for d in draws]
    np.testing.assert_allclose([r["wasserstein_ci_low"], r["wasserstein_ci_high"]], percentile_interval(reps, 0.9),
                               rtol=1e-5)
    assert r["kl_participant_ci_low"] is None
    assert r["kl_ci_low"] <= r["kl_mean"] <= r["kl_ci_high"]


def replay_participant_bootstrap(preds, refs, ordinal, B, seed, policy):
    P = max(len(a) for a in preds)
    draws = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1]).integers(0, P, size=(B, P))
    out = {s: [] for s in ("kl", "js", "wasserstein", "match_rate")}
    for row in draws:
        w = np.bincount(row, minlength=P).astype(float)
        ps, qs, ords = [], [], []
        for a, q, o in zip(preds, refs, ordinal):
            p, total = model_distribution(a, len(q), w[: len(a)])
            if total > 0:  # a question whose participants were none drawn is left out
                ps.append(p)
                qs.append(q)
                ords.append(o)
        ref = reference_scores(ps, qs, ords, policy)
        for s in out:
            out[s].append(np.nanmean(ref[s]) if np.isfinite(ref[s]).any() else np.nan)
    return out


def compositions(P, k):
    """Every count vector of P answers over k options (stars and bars), (M, k)."""
    rows = []
    for bars in itertools.combinations(range(P + k - 1), k - 1):
        edges = (-1,) + bars + (P + k - 1,)
        rows.append([edges[i + 1] - edges[i] - 1 for i in range(k)])
    return np.array(rows)


def divergence_rows(ps, q, ordinal, policy, eps=1e-3):
    """KL, JS and Wasserstein of each row of ps against q, with scipy."""
    if policy == "smoothing":
        kl = entropy(ps + eps, np.asarray(q) + eps, axis=1)
    else:
        kl = entropy(ps, np.broadcast_to(q, ps.shape), axis=1)
    js = jensenshannon(ps, np.broadcast_to(q, ps.shape), base=2, axis=1)
    w = np.abs(np.cumsum(ps - np.asarray(q), axis=1)[:, :-1]).sum(axis=1) / (len(q) - 1) if ordinal else np.nan
    return {"kl": kl, "js": js, "wasserstein": w}


def smoothed_bias(answers, q, ordinal, policy):
    """E[D(P answers drawn from p~)] - D(p~), p~ = (counts + 1) / (P + k), by enumeration."""
    k, P = len(q), len(answers)
    p, _ = model_distribution(answers, k)
    tilde = (p * P + 1.0) / (P + k)
    comps = compositions(P, k)
    weights = multinomial.pmf(comps, P, tilde)
    at = divergence_rows(comps / P, q, ordinal, policy)
    centre = divergence_rows(tilde[None, :], q, ordinal, policy)
    with np.errstate(invalid="ignore"):
        return {s: float(weights @ at[s] - centre[s][0]) if ordinal or s != "wasserstein" else np.nan for s in at}


def replay_jackknife(preds, refs, ordinal, policy):
    """The participant jackknife recomputed with scipy: delete participant group g (participant
    j is in group j mod G, G = min(P, 100)) from every question, rescore, average. Returns the
    replicates' means and, per question, the jackknife bias (L - 1) x mean deviation of the L
    replicates that delete one of its participants (L = its answers, at most G)."""
    P = max(len(a) for a in preds)
    G = min(P, 100)
    plug = reference_scores([model_distribution(a, len(q))[0] for a, q in zip(preds, refs)], refs, ordinal, policy)
    out = {s: [] for s in ("kl", "js", "wasserstein", "match_rate")}
    dev = np.zeros(len(preds))
    for g in range(G):
        ps, qs, ords, idx = [], [], [], []
        for i, (a, q, o) in enumerate(zip(preds, refs, ordinal)):
            w = (np.arange(len(a)) % G != g).astype(float)
            p, total = model_distribution(a, len(q), w)
            if total > 0:  # a question left without participants is left out of the replicate
                ps.append(p), qs.append(q), ords.append(o), idx.append(i)
        ref = reference_scores(ps, qs, ords, policy)
        for stat in out:
            out[stat].append(np.nanmean(ref[stat]))
        dev[idx] += ref["kl"] - plug["kl"][idx]
    L = np.minimum([len(a) for a in preds], G)
    return out, plug, (L - 1) * dev / L


def table_bias(preds, refs, bias, eps=1e-3):
    """``bias`` with the count table's participant bias (participant_bias) on the questions it
    covers: one answer per participant, 2..MAX_TABLE_PARTICIPANTS of them: s x sum over options of
    (c/P + eps) log(c/P + eps) - T_P(c), s = 1 / (1 + k eps)."""
    from culturesim.metrics.cultural_alignment.participant_bias import MAX_TABLE_PARTICIPANTS, count_table

    out = np.array(bias, dtype=float)
    for i, (a, q) in enumerate(zip(preds, refs)):
        P, k = len(a), len(q)
        if any(isinstance(x, list) and len(x) > 1 for x in a) or not 2 <= P <= MAX_TABLE_PARTICIPANTS:
            continue  # a multiple choice of one option is a single answer
        c = np.bincount([x[0] if isinstance(x, list) else x for x in a], minlength=k)
        h = (c / P + eps) * np.log(c / P + eps)
        out[i] = (h - count_table(P, eps)[c]).sum() / (1 + k * eps)
    return out


def replay_w_fold(preds, refs, ordinal):
    """intervals.w_fold_factor over all ordinal questions, recomputed step by step with the dense
    covariance of the cumulative model shares (no human side: human_n_effective not given): a step
    nobody crossed (or everybody did) in a question whose answers are spread gets the variance of
    the Laplace-smoothed cumulative share (F P + s + 1) / (P + k) on the diagonal; per step the
    folded normal |D_s|, D_s ~ N(observed gap, sigma_s^2), split into its linear part (slope E[sign]
    = 2 Phi(|gap| / sigma_s) - 1) and a residual R_s, residuals correlated by rho_st^2; the factor is
    sum(h' Sigma h + sum_st rho_st^2 sqrt(R_s R_t)) / sum(g' Sigma g), g the observed signs,
    h = g x slope, Sigma with the added diagonal in the numerator only."""
    from scipy.stats import norm

    lin = smooth = 0.0
    for a, q, o in zip(preds, refs, ordinal):
        if not o:
            continue
        k = len(q)
        p = model_distribution(a, k)[0]
        F, Fq = np.cumsum(p)[:-1], np.cumsum(q)[:-1]
        P = len(a)
        cov = np.array([[min(F[s], F[t]) * (1 - max(F[s], F[t])) / P for t in range(k - 1)] for s in range(k - 1)])
        extra = np.zeros(k - 1)
        if max(p) < 1 - 1e-12:
            for s in range(k - 1):
                if F[s] <= 1e-12 or F[s] >= 1 - 1e-12:
                    tilde = (F[s] * P + s + 1) / (P + k)
                    extra[s] = tilde * (1 - tilde) / P
        full = cov + np.diag(extra)
        gap = F - Fq
        g = np.sign(gap)
        sd = np.sqrt(np.diag(full))
        r = np.divide(np.abs(gap), sd, out=np.zeros(k - 1), where=sd > 0)
        slope = 2 * norm.cdf(r) - 1
        mean = np.sqrt(2 / np.pi) * np.exp(-r * r / 2) + r * (1 - 2 * norm.cdf(-r))
        residual = sd**2 * (np.maximum(1 + r * r - mean**2, slope**2) - slope**2)
        both = 0.0
        for s in range(k - 1):
            for t in range(k - 1):
                if sd[s] > 0 and sd[t] > 0:
                    rho = full[s, t] / (sd[s] * sd[t])
                    both += rho * rho * math.sqrt(residual[s] * residual[t])
        h = g * slope
        lin += g @ cov @ g / (k - 1) ** 2
        smooth += (h @ cov @ h + h @ np.diag(extra) @ h + both) / (k - 1) ** 2
    return smooth / lin


@pytest.mark.parametrize(
    "policy, ragged, multi",
    [("smoothing", False, False), ("paper", False, False), ("smoothing", True, True), ("paper", True, False)],
)
def test_participant_jackknife_replayed(policy, ragged, multi):
    """The participant interval of a mean, recomputed independently (replay_jackknife, scipy):
    se^2 = (G - 1) / G x sum of the replicate means' squared deviations, plus or minus z x se (KL:
    Student t with G - 1 degrees of freedom); the match rate, JS and
    Wasserstein are centred on the plug-in mean (the interval is for its expectation), KL on the
    bias-corrected mean (plug-in minus the mean jackknife bias) with the bias estimates' spread
    over the questions added to its variance. Under 'paper' a replicate's infinity replacement
    depends on every question, so there is no per-question bias and no bias-corrected KL.
    Wasserstein's variance is scaled by its fold factor (replay_w_fold) and takes Student t with
    Welch-Satterthwaite's df, here G - 1 (no human side)."""
    rng = np.random.default_rng(21)
    preds, refs, ordinal = random_case(rng, 25, participants=6, ragged=ragged, multi=multi)
    if ragged:  # 3 or more answers per question: fewer give no participant interval (tested below)
        preds = [a + a[:1] * max(0, 3 - len(a)) for a in preds]
    r = compute_alignment(predictions=preds, references=refs, ordinal=ordinal, zero_policy=policy,
                          bootstrap_samples=0, participant_bootstrap_samples=100, seed=4)
    reps, plug, bias = replay_jackknife(preds, refs, ordinal, policy)
    if policy == "smoothing":  # single-answer questions with at most 10 participants: the count table's bias
        bias = table_bias(preds, refs, bias)
    G = len(reps["kl"])
    z = 1.959963984540054  # scipy.stats.norm.ppf(0.975)
    for stat in ("kl", "js", "wasserstein", "match_rate"):
        values = np.asarray(reps[stat])
        var = (G - 1) / G * ((values - values.mean()) ** 2).sum()
        point = r["match_rate"] if stat == "match_rate" else r[f"{stat}_mean"]
        if stat == "kl":
            if policy == "paper":
                assert r["kl_bc_mean"] is None and r["kl_participant_ci_low"] is None
                continue
            point = point - bias.mean()
            var += bias.var()  / len(bias)
            assert r["kl_bc_mean"] == pytest.approx(point, rel=1e-4, abs=1e-6)
        if stat == "wasserstein":
            var *= replay_w_fold(preds, refs, ordinal)
        # KL and Wasserstein: Student t with the jackknife's G - 1 degrees of freedom (its variance
        # rests on G deletions; Wasserstein's Satterthwaite df is that without a human side)
        half = (student_t.ppf(0.975, G - 1) if stat in ("kl", "wasserstein") else z) * math.sqrt(var)
        upper = math.inf if stat == "kl" else 1.0
        expected = np.clip([point - half, point + half], 0.0, upper)
        np.testing.assert_allclose([r[f"{stat}_participant_ci_low"], r[f"{stat}_participant_ci_high"]], expected,
                                   rtol=1e-4, atol=2e-6)
        assert r[f"{stat}_participant_se"] == pytest.approx(math.sqrt(var), rel=1e-4, abs=2e-6)
    assert r["kl_ci_low"] is None  # question bootstrap off
    # a question with fewer than 3 answers: no participant interval of a mean over it
    short = compute_alignment(predictions=preds[:-1] + [preds[-1][:2]], references=refs, ordinal=ordinal,
                              zero_policy=policy, bootstrap_samples=0)
    assert short["n_few_participants"] == 1 and short["js_participant_ci_low"] is None


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(2)
    preds, refs, ordinal = random_case(rng, 30)
    a = compute_alignment(predictions=preds, references=refs, ordinal=ordinal, bootstrap_samples=200, seed=1)
    b = compute_alignment(predictions=preds, references=refs, ordinal=ordinal, bootstrap_samples=200, seed=1)
    c = compute_alignment(predictions=preds, references=refs, ordinal=ordinal, bootstrap_samples=200, seed=2)
    assert a == b
    assert a["kl_ci_low"] != c["kl_ci_low"]
    assert a["settings"] == {"zero_policy": "smoothing", "smoothing": 1e-3, "bootstrap_samples": 200,
                             "participant_bootstrap_samples": 100, "confidence": 0.95, "seed": 1}


# --------------------------------------------------------------------------------------
# Bad input: ValueError naming the question and the value
# --------------------------------------------------------------------------------------

GOOD = {"predictions": [[0, 1, 1], [2, 0]], "references": [[0.5, 0.5], [0.2, 0.3, 0.5]], "question_ids": ["a", "b"]}


def with_(**changes):
    kwargs = {**GOOD, **changes}
    return {k: v for k, v in kwargs.items() if v is not None}


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (with_(references=[[0.5, 0.5]]), r"predictions has 2 entries but references has 1"),
        (with_(ordinal=[True]), r"ordinal has 1 entries but references has 2"),
        (with_(value_dimensions=[["EVI"]]), r"value_dimensions has 1 entries"),
        (with_(references=[[0.5, 0.5], [0.2, float("nan"), 0.8]]), r"question 1 \(id 'b'\).*NaN"),
        (with_(references=[[0.5, 0.5], [0.6, -0.1, 0.5]]), r"question 1 \(id 'b'\).*negative share -0.1"),
        (with_(references=[[0.5, 0.5], [0.2, 0.3, 0.6]]), r"question 1 \(id 'b'\).*sums to 1.1, not 1"),
        (with_(references=[[0.5, 0.5], [1.0]]), r"question 1 \(id 'b'\).*at least 2 options"),
        (with_(references=[[0.5, 0.5], "abc"]), r"question 1 \(id 'b'\).*list of floats"),
        (with_(references=[[0.5, 0.5], [0.5, "x", 0.5]]), r"question 1 \(id 'b'\).*list of numbers"),
        (with_(predictions=[[0, 1, 2], [2, 0]]),
         r"question 0 \(id 'a'\): participant 2 answered option 2, outside 0..1"),
        (with_(predictions=[[0, 1], [-1, 0]]), r"question 1 \(id 'b'\): participant 0 answered option -1"),
        (with_(predictions=[[0, 1], []]), r"question 1 \(id 'b'\): the answer list is empty"),
        (with_(predictions=[[0, 1.5], [1]]), r"question 0 \(id 'a'\): participant 1 answered 1.5"),
        (with_(predictions=[[0, 1], [True, 0]]), r"question 1 \(id 'b'\): participant 0 answered True"),
        (with_(predictions=[[0, 1], [[0, 1], []]]), r"question 1 \(id 'b'\): participant 1 gave an empty"),
        (with_(predictions=[[0, 1], [[0, 0], 1]]), r"question 1 \(id 'b'\): participant 0 answered \[0, 0\].*twice"),
        (with_(predictions=[[0, 1], [[0, 5], 1]]), r"question 1 \(id 'b'\): participant 0 answered option 5"),
        (with_(predictions=[[0, "1"], [1]]), r"question 0 \(id 'a'\): participant 1 answered '1'"),
        (with_(predictions=[[0, 1], None]), r"question 1 \(id 'b'\): the answers .*must be a list, got None"),
        (with_(predictions=None, probabilities=[[0.5, 0.5], [0.5, 0.5]]), r"question 1 \(id 'b'\).*have 2 entries"),
        (with_(predictions=None, probabilities=[[0.5, 0.5], [0.1, 0.1, 0.1]]), r"question 1 \(id 'b'\).*sums to 0.3"),
        (with_(predictions=None, probabilities=[[0.5, 0.5], [0.5, float("nan"), 0.5]]), r"question 1 \(id 'b'\).*NaN"),
        (with_(probabilities=[[0.5, 0.5], [0.2, 0.3, 0.5]]), r"exactly one of predictions"),
        (with_(predictions=None), r"exactly one of predictions"),
        (with_(ordinal=[True, "yes"]), r"question 1 \(id 'b'\): ordinal='yes'"),
        (with_(value_dimensions=[["EVI"], ["XYZ"]]), r"question 1 \(id 'b'\): unknown value dimension 'XYZ'"),
        (with_(value_dimensions=[["EVI"], "EVI"]), r"question 1 \(id 'b'\): value_dimensions='EVI'"),
        (with_(num_options=[2, 4]), r"question 1 \(id 'b'\): num_options=4"),
        (with_(demographics=[[], [{"group_type": "sex", "group": "other", "distribution": [0.2, 0.3, 0.5]}]]),
         r"question 1 \(id 'b'\): unknown demographic group 'sex'/'other'"),
        (with_(demographics=[[], [{"group_type": "sex", "distribution": [0.2, 0.3, 0.5]}]]),
         r"question 1 \(id 'b'\): demographic entry .* needs the keys"),
        (with_(demographics=[demo(female=[0.5, 0.6]), []]), r"question 0 \(id 'a'\), sex/female.*sums to 1.1"),
        (with_(demographics=[demo(female=[0.5, -0.5, 1.0]), []]),
         r"question 0 \(id 'a'\): the sex/female distribution"),
        (with_(demographics=[[], demo(a18=[0.2, float("nan"), 0.8])]), r"question 1 \(id 'b'\), age/18-29.*NaN"),
        (with_(demographics=[demo(male=[0.5, 0.5]) * 2, []]),
         r"question 0 \(id 'a'\): demographic group sex/male appears twice"),
        (with_(question_ids=["a", 7]), r"question 1: question_ids\[1\]=7"),
        (with_(zero_policy="none"), r"zero_policy='none'; choose one of"),
        (with_(smoothing=0.0), r"smoothing=0.0 must be a positive"),
        (with_(bootstrap_samples=-1), r"bootstrap_samples=-1"),
        (with_(confidence=1.5), r"confidence=1.5"),
        (with_(references=[]), r"references is empty"),
    ],
)
def test_bad_input_raises_value_error_naming_the_question(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        compute_alignment(**kwargs)


def test_question_named_by_index_without_ids():
    with pytest.raises(ValueError, match=r"^question 1: participant 0 answered option 3"):
        compute_alignment(predictions=[[0], [3]], references=[[0.5, 0.5], [0.5, 0.5]])


def test_sum_tolerance_is_1e_6():
    ok = compute_alignment(probabilities=[[0.5, 0.5]], references=[[0.5 + 4e-7, 0.5]], bootstrap_samples=0)
    assert ok["n_questions"] == 1
    with pytest.raises(ValueError, match="tolerance 1e-06"):
        compute_alignment(probabilities=[[0.5, 0.5]], references=[[0.5 + 2e-6, 0.5]])


def test_edge_sizes_give_defined_numbers():
    # one question, one participant: every replicate is the data itself
    r = compute_alignment(predictions=[[1]], references=[[0.3, 0.7]], bootstrap_samples=50)
    json.dumps(r, allow_nan=False)
    assert r["kl_ci_low"] == pytest.approx(r["kl_mean"]) == pytest.approx(r["kl_ci_high"])
    # one or two participants: flagged, and nothing that would rank the run is given (with one
    # participant a model always giving the human modal answer scored "better than perfect" in 2.x)
    for answers in ([1], [1, 1]):
        r = compute_alignment(predictions=[answers], references=[[0.3, 0.7]], bootstrap_samples=50,
                              return_per_question=True)
        assert r["n_few_participants"] == 1
        for key in ("kl_bc_mean", "kl_participant_ci_low", "kl_participant_se", "js_participant_ci_low",
                    "normalised_kl", "normalised_js", "worth_n", "worth_n_infinite"):
            assert r[key] in (None, False), key
        assert r["per_question"][0]["kl_participant_ci_low"] is None and r["per_question"][0]["kl_bc"] is None
    r = compute_alignment(predictions=[[1]], references=[[0.3, 0.7]], bootstrap_samples=50)
    assert r["wasserstein_mean"] is None and r["wasserstein_ci_low"] is None
    assert r["wasserstein_participant_ci_low"] is None
    assert r["per_dimension"] == {} and r["unanimous_share"] == 1.0
    assert r["bias_profile"]["n"] == {"sex": 0, "age": 0}


def test_evaluate_style_inputs_from_numpy():
    # references as a 2-D array, ordinal as a bool array: the same numbers as lists
    rng = np.random.default_rng(4)
    refs = rng.dirichlet(np.ones(5), 30)
    preds = rng.integers(0, 5, (30, 12))
    ordinal = rng.random(30) < 0.5
    a = compute_alignment(predictions=preds, references=refs, ordinal=ordinal, bootstrap_samples=20)
    b = compute_alignment(predictions=preds.tolist(), references=refs.tolist(), ordinal=ordinal.tolist(),
                          bootstrap_samples=20)
    assert a == b


def test_per_question_participant_intervals_recomputed():
    """The three per-question interval rules, recomputed by hand with scipy: a two-option
    question's Wilson image, an ordinal question's folded cumulative steps, and a four-option
    question's (plug-in - b) +- z sqrt(se^2 + b^2) with se at least the delta-method standard
    error at p~ (its gradient here by finite differences of scipy's entropy)."""
    z = 1.959963984540054
    preds = [[0] * 3 + [1] * 17, [0, 0, 1, 2, 2, 2, 4, 4, 4, 4], [0] * 15 + [1] * 3 + [3] * 2]
    refs = [[0.6, 0.4], [0.1, 0.2, 0.3, 0.2, 0.2], [0.1, 0.2, 0.6, 0.1]]
    ordinal = [False, True, False]
    r = compute_alignment(predictions=preds, references=refs, ordinal=ordinal, bootstrap_samples=0,
                          participant_bootstrap_samples=200, seed=3, return_per_question=True)
    two, steps, four = r["per_question"]
    # two options: Wilson interval of the first share, 3 of 20
    c, n = 3, 20
    centre = (c + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(c * (n - c) / n + z * z / 4)
    lo, hi = centre - half, centre + half
    q = np.array(refs[0])
    kl = lambda s: entropy(np.array([s, 1 - s]) + 1e-3, q + 1e-3)  # noqa: E731
    js = lambda s: jensenshannon([s, 1 - s], q, base=2)  # noqa: E731
    assert lo < 0.6 and hi < 0.6  # the human share lies above the interval: D is least at hi
    assert two["kl_participant_ci_low"] == pytest.approx(kl(hi), rel=1e-9)
    assert two["kl_participant_ci_high"] == pytest.approx(kl(lo), rel=1e-9)
    assert two["js_participant_ci_low"] == pytest.approx(js(hi), rel=1e-9)
    assert two["js_participant_ci_high"] == pytest.approx(js(lo), rel=1e-9)
    # ordinal, five options, ten answers: per cumulative step a Wald interval from the smoothed share
    k, n = 5, 10
    counts = np.bincount(preds[1], minlength=k)
    cum_p, cum_q = np.cumsum(counts)[:-1] / n, np.cumsum(refs[1])[:-1]
    smooth = (np.cumsum(counts)[:-1] + np.arange(1, k)) / (n + k)
    se = np.sqrt(smooth * (1 - smooth) / n)
    gap = np.abs(cum_p - cum_q)
    assert steps["wasserstein_participant_ci_low"] == pytest.approx(np.maximum(gap - z * se, 0).sum() / (k - 1), rel=1e-9)
    assert steps["wasserstein_participant_ci_high"] == pytest.approx((gap + z * se).sum() / (k - 1), rel=1e-9)
    assert steps["wasserstein_participant_ci_low"] <= steps["wasserstein"] <= steps["wasserstein_participant_ci_high"]
    # four options, option 2 (the human's 60 %) never chosen: the bootstrap cannot vary it
    q, n = np.array(refs[2]), 20
    tilde = (np.bincount(preds[2], minlength=4) + 1.0) / (n + 4)
    b = smoothed_bias(preds[2], refs[2], False, "smoothing")
    for stat, f in (("kl", lambda p: entropy(p + 1e-3, q + 1e-3)), ("js", lambda p: jensenshannon(p, q, base=2))):
        h = 1e-6
        grad = np.array([(f(tilde + h * np.eye(4)[j]) - f(tilde - h * np.eye(4)[j])) / (2 * h) for j in range(4)])
        delta = math.sqrt((tilde @ grad ** 2 - (tilde @ grad) ** 2) / n)
        se = four[f"{stat}_participant_se"]
        assert se >= delta * (1 - 1e-4) and se == pytest.approx(max(se, delta))
        tol = 3e-3 if stat == "js" else 1e-9  # the metric's JS bias above 100 outcomes: 8 controlled Monte Carlo draws
        assert four[f"{stat}_bc"] == pytest.approx(four[stat] - b[stat], abs=tol)
        half = z * math.sqrt(se ** 2 + b[stat] ** 2)
        assert four[f"{stat}_participant_ci_low"] == pytest.approx(max(four[stat] - b[stat] - half, 0.0), abs=2 * tol)
        assert four[f"{stat}_participant_ci_high"] == pytest.approx(four[stat] - b[stat] + half, abs=2 * tol)
