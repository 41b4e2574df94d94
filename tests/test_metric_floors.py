"""Floors, uniform baselines and the normalised score, against brute force with scipy.

The floor of a question is the expected divergence of P answers drawn from the human
distribution itself; here every outcome of P draws is enumerated with itertools, weighted by
scipy.stats.multinomial.pmf and scored with scipy (entropy, jensenshannon,
wasserstein_distance), independently of the metric's binomial-marginal formulas.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy, multinomial, wasserstein_distance

from culturesim.metrics.cultural_alignment import compute_alignment, refusal_channel

EPS = 1e-3


def scipy_divergences(p, q, policy="smoothing"):
    k = len(q)
    p, q = np.asarray(p, float), np.asarray(q, float)
    kl = entropy(p + EPS, q + EPS) if policy == "smoothing" else entropy(p, q)
    js = jensenshannon(p, q, base=2)
    w = wasserstein_distance(np.arange(k), np.arange(k), p, q) / (k - 1)
    return kl, js, w


def brute_force_expectation(draw_from, q, P, policy="smoothing"):
    """E[(KL, JS, W)(counts / P, q)] over every count vector of P answers drawn from draw_from."""
    k = len(q)
    total = np.zeros(3)
    mass = 0.0
    for counts in itertools.product(range(P + 1), repeat=k):
        if sum(counts) != P:
            continue
        prob = multinomial.pmf(counts, P, draw_from)
        if prob == 0:
            continue
        total += prob * np.array(scipy_divergences(np.array(counts) / P, q, policy))
        mass += prob
    assert mass == pytest.approx(1.0, abs=1e-9)
    return total


def answers_for(q, P, rng):
    return rng.choice(len(q), size=P, p=q).tolist()


@pytest.mark.parametrize("k, P", [(2, 5), (3, 4), (4, 6), (3, 12), (2, 20)])
def test_floor_and_uniform_baseline_match_brute_force(k, P):
    rng = np.random.default_rng(100 * k + P)
    refs = [rng.dirichlet(np.ones(k)).tolist() for _ in range(3)]
    preds = [answers_for(q, P, rng) for q in refs]
    r = compute_alignment(predictions=preds, references=refs, ordinal=[True] * 3, bootstrap_samples=0,
                          return_per_question=True)
    for q, row in zip(refs, r["per_question"]):
        floor = brute_force_expectation(q, q, P)
        uniform = brute_force_expectation(np.full(k, 1 / k), q, P)
        got_floor = [row["floor_kl"], row["floor_js"], row["floor_wasserstein"]]
        got_uniform = [row["uniform_kl"], row["uniform_js"], row["uniform_wasserstein"]]
        np.testing.assert_allclose(got_floor, floor, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got_uniform, uniform, rtol=1e-9, atol=1e-12)
        assert row["floor_exact"] is True
    assert r["floor_kl_mean"] == pytest.approx(np.mean([p["floor_kl"] for p in r["per_question"]]), rel=1e-12)


def test_exact_kl_floor_and_infinite_uniform_baseline():
    """Under zero_policy='raise' the floor uses the exact KL; a uniform baseline that can pick an
    option no human chose has an infinite expected KL, so it and the KL score are None."""
    refs = [[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]]
    preds = [[0, 1, 1, 0], [2, 2, 1, 0]]
    r = compute_alignment(predictions=preds, references=refs, zero_policy="raise", bootstrap_samples=0,
                          return_per_question=True)
    first, second = r["per_question"]
    assert first["floor_kl"] == pytest.approx(brute_force_expectation(refs[0], refs[0], 4, "raise")[0], rel=1e-9)
    assert first["uniform_kl"] is None and "normalised_kl" not in first  # no per-question normalised score in 3.0
    assert second["uniform_kl"] == pytest.approx(brute_force_expectation([1 / 3] * 3, refs[1], 4, "raise")[0], rel=1e-9)
    # the normalised KL's baseline is the uniform vector (floor 0, bias-corrected KL): infinite for the first
    # question, which is left out of the score
    # with the delete-one jackknife's bias (P - 1) x mean(KL without answer j - KL), exact KL by scipy
    counts = np.bincount(preds[1], minlength=3)
    plug = entropy(counts / 4, refs[1])
    drop = [entropy((counts - np.eye(3, dtype=int)[a]) / 3, refs[1]) for a in preds[1]]
    bc = plug - 3 * (np.mean(drop) - plug)
    u = entropy([1 / 3] * 3, refs[1])
    assert r["n_normalised_kl"] == 1
    assert r["normalised_kl"] == pytest.approx((u - bc) / u, rel=1e-5)
    assert r["n_normalised_js"] == 2


def test_monte_carlo_js_floor_is_close_to_enumeration():
    """k = 5 and P = 20 have 10,626 outcomes, above the exact-enumeration limit: the JS floor is
    seeded Monte Carlo (with a control variate) and does not depend on the bootstrap seed; KL
    stays exact (Wasserstein too: the brute-force cases above cover it)."""
    rng = np.random.default_rng(5)
    refs = [rng.dirichlet(np.ones(5)).tolist() for _ in range(30)]
    preds = [answers_for(q, 20, rng) for q in refs]
    r = compute_alignment(predictions=preds, references=refs, ordinal=[True] * 30, bootstrap_samples=0,
                          return_per_question=True)
    # the 10,626 outcomes by stars and bars, scored with scipy along an axis
    bars = np.array(list(itertools.combinations(range(24), 4)))
    counts = np.diff(np.hstack([np.full((len(bars), 1), -1), bars, np.full((len(bars), 1), 24)]), axis=1) - 1
    assert (counts.sum(axis=1) == 20).all() and len({tuple(c) for c in counts}) == len(counts) == 10626
    errors = []
    for q, row in zip(refs, r["per_question"]):
        prob = multinomial.pmf(counts, 20, q)
        p = counts / 20
        kl = prob @ entropy(p + EPS, np.asarray(q) + EPS, axis=1)
        js = prob @ jensenshannon(p, np.broadcast_to(q, p.shape), base=2, axis=1)
        assert row["floor_exact"] is False
        assert row["floor_kl"] == pytest.approx(kl, rel=1e-9)
        errors.append(row["floor_js"] / js - 1)
    errors = np.abs(errors)
    assert errors.mean() < 0.03 and errors.max() < 0.08, errors  # the card says "about 2-3 %"
    mean_js = np.mean([p["floor_js"] for p in r["per_question"]])
    assert r["floor_js_mean"] == pytest.approx(mean_js, rel=1e-12)
    again = compute_alignment(predictions=preds, references=refs, ordinal=[True] * 30, bootstrap_samples=0,
                              return_per_question=True, seed=7)
    assert [p["floor_js"] for p in again["per_question"]] == [p["floor_js"] for p in r["per_question"]]


def test_normalised_score_by_hand_for_probability_vectors():
    """For probability vectors the floor is 0 and the baseline is the uniform vector's divergence."""
    refs = [[0.6, 0.3, 0.1], [0.25, 0.25, 0.5]]
    probs = [[0.5, 0.3, 0.2], [0.1, 0.3, 0.6]]
    r = compute_alignment(probabilities=probs, references=refs, ordinal=[True, False], bootstrap_samples=200,
                          return_per_question=True)
    u = [1 / 3] * 3
    for stat, col in (("kl", 0), ("js", 1)):
        d = [scipy_divergences(p, q)[col] for p, q in zip(probs, refs)]
        base = [scipy_divergences(u, q)[col] for q in refs]
        assert r[f"normalised_{stat}"] == pytest.approx((sum(base) - sum(d)) / sum(base), rel=1e-9)
        assert r[f"floor_{stat}_mean"] == 0.0
        assert r[f"uniform_{stat}_mean"] == pytest.approx(np.mean(base), rel=1e-12)
        assert r[f"normalised_{stat}_ci_low"] <= r[f"normalised_{stat}"] <= r[f"normalised_{stat}_ci_high"]
        assert r[f"normalised_{stat}_participant_ci_low"] is None
    w = scipy_divergences(probs[0], refs[0])[2]
    wu = scipy_divergences(u, refs[0])[2]
    assert r["normalised_wasserstein"] == pytest.approx((wu - w) / wu, rel=1e-9)
    assert not any(key.startswith("normalised") for key in r["per_question"][1])  # none per question in 3.0


def test_normalised_score_golden_for_answers():
    """Normalised score of a small run, from brute-force floors and baselines."""
    refs = [[0.7, 0.3], [0.2, 0.5, 0.3]]
    preds = [[0, 0, 1, 0, 1, 1], [1, 1, 2, 0, 1, 1]]
    r = compute_alignment(predictions=preds, references=refs, ordinal=[False, True], bootstrap_samples=0)
    num = den = 0.0
    wnum = wden = 0.0
    for q, a in zip(refs, preds):
        k, P = len(q), len(a)
        p = np.bincount(a, minlength=k) / P
        d = scipy_divergences(p, q)
        floor = brute_force_expectation(q, q, P)
        base = brute_force_expectation(np.full(k, 1 / k), q, P)
        num += base[1] - d[1]
        den += base[1] - floor[1]
        if k == 3:
            wnum, wden = base[2] - d[2], base[2] - floor[2]
    assert r["normalised_js"] == pytest.approx(num / den, rel=1e-9)
    assert r["normalised_wasserstein"] == pytest.approx(wnum / wden, rel=1e-9)


def simulated_run(rng, n, P, uniform):
    ks = rng.integers(2, 8, n)
    refs = [rng.dirichlet(np.full(k, 0.8)) for k in ks]
    preds = [rng.choice(k, size=P, p=np.full(k, 1 / k) if uniform else q).tolist() for k, q in zip(ks, refs)]
    return preds, [q.tolist() for q in refs], (rng.random(n) < 0.5).tolist()


@pytest.mark.parametrize("P", [20, 50])
def test_normalised_is_one_for_human_draws_and_zero_for_uniform_answers(P):
    """Over many seeds: answers drawn from the human distribution score about 1, uniformly random
    answers about 0, on every divergence, whatever the run size."""
    perfect = {s: [] for s in ("kl", "js", "wasserstein")}
    random_ = {s: [] for s in ("kl", "js", "wasserstein")}
    for seed in range(40):
        rng = np.random.default_rng(seed)
        for uniform, store in ((False, perfect), (True, random_)):
            preds, refs, ordinal = simulated_run(rng, 60, P, uniform)
            r = compute_alignment(predictions=preds, references=refs, ordinal=ordinal, bootstrap_samples=0)
            for s in store:
                store[s].append(r[f"normalised_{s}"])
    for s in perfect:
        assert np.mean(perfect[s]) == pytest.approx(1.0, abs=0.03), s
        assert np.mean(random_[s]) == pytest.approx(0.0, abs=0.03), s
        # single runs of 60 questions scatter, but stay near their target
        assert np.abs(np.array(perfect[s]) - 1).max() < 0.35, s
        assert np.abs(np.array(random_[s])).max() < 0.35, s


def test_refusal_channel_by_hand():
    """Non-answer shares by status, against the human non-substantive share: a separate error."""
    refs = [[0.5, 0.5], [0.2, 0.8], [0.6, 0.4]]
    preds = [[0, 1, 1], [1, 1], [0]]
    statuses = [{"ok": 3, "refusal": 1}, {"ok": 2, "no_answer": 1, "refusal": 1, "error": 5}, {"ok": 1}]
    human = [0.05, None, 0.1]
    r = compute_alignment(predictions=preds, references=refs, response_statuses=statuses,
                          human_nonsubstantive_share=human, bootstrap_samples=0, return_per_question=True)
    ref = r["refusals"]
    assert ref["n_questions"] == 3 and ref["n_with_human_share"] == 2
    assert ref["model_non_answer_share_mean"] == pytest.approx((0.25 + 0.5 + 0.0) / 3)  # errors left out
    assert ref["by_status"]["refusal"] == pytest.approx((0.25 + 0.25 + 0) / 3)
    assert ref["by_status"]["no_answer"] == pytest.approx(0.25 / 3)
    assert ref["error_mean"] == pytest.approx(((0.25 - 0.05) + (0 - 0.1)) / 2)
    assert ref["abs_error_mean"] == pytest.approx((0.2 + 0.1) / 2)
    assert r["per_question"][1]["non_answer_error"] is None
    assert r["per_question"][0]["non_answer_by_status"] == {"no_answer": 0.0, "refusal": 0.25}
    # the divergences do not see the refusals
    plain = compute_alignment(predictions=preds, references=refs, bootstrap_samples=0)
    assert plain["kl_mean"] == r["kl_mean"] and plain["refusals"] is None


def test_no_ceiling_input_and_survey_noise_from_n_effective():
    """Metric 3.0 takes no split-half ceiling (its yardsticks are the floor at the run's P and the
    survey's own noise); the survey noise of KL is the floor of n_eff respondents, checked by
    brute-force enumeration at a small n_eff; JS from its chi-square large-sample form."""
    refs = [[0.5, 0.5], [0.2, 0.8]]
    preds = [[0, 1, 1], [1, 1, 0]]
    with pytest.raises(TypeError, match="human_ceiling"):
        compute_alignment(predictions=preds, references=refs, human_ceiling=[None, None])
    r = compute_alignment(predictions=preds, references=refs, ordinal=[True, True], human_n_effective=[6, 8],
                          bootstrap_samples=0, return_per_question=True)
    kl = [brute_force_expectation(q, q, n)[0] for q, n in zip(refs, (6, 8))]
    for row, want, n in zip(r["per_question"], kl, (6, 8)):
        assert row["survey_noise_kl"] == pytest.approx(want, rel=1e-9)
        assert row["survey_noise_js"] == pytest.approx(math.sqrt(2 / (8 * n * math.log(2))) * math.gamma(1) / math.gamma(0.5),
                                                       rel=1e-9)
    assert r["survey_noise_kl_mean"] == pytest.approx(np.mean(kl), rel=1e-9)
    assert compute_alignment(predictions=preds, references=refs, bootstrap_samples=0)["survey_noise_kl_mean"] is None


def test_refusal_channel_alone_matches_the_metric_block():
    statuses = [{"ok": 3, "refusal": 1}, {"ok": 2, "no_answer": 2}, {"refusal": 4}]
    human = [0.05, 0.2, None]
    alone = refusal_channel(statuses, human, question_ids=["a", "b", "c"], bootstrap_samples=300, seed=3)
    scored = compute_alignment(predictions=[[0, 1, 1], [1, 0]], references=[[0.5, 0.5], [0.5, 0.5]],
                               response_statuses=statuses[:2], human_nonsubstantive_share=human[:2],
                               bootstrap_samples=300, seed=3)["refusals"]
    assert alone["n_questions"] == 3 and alone["model_non_answer_share_mean"] == pytest.approx((0.25 + 0.5 + 1) / 3)
    assert alone["by_status"]["refusal"] == pytest.approx((0.25 + 0 + 1) / 3)
    for key in ("error_mean", "abs_error_mean", "human_nonsubstantive_share_mean", "n_with_human_share"):
        assert alone[key] == pytest.approx(scored[key])  # the unscored question has no human share
    with pytest.raises(ValueError, match=r"question 1 \(id 'b'\): response_statuses\['ok'\]=-1"):
        refusal_channel([{"ok": 1}, {"ok": -1}], question_ids=["a", "b"])
