"""Demographic gaps on whole distributions, and the two rules of the argmax profile.

Gaps are recomputed with scipy question by question; the permutation p-value is checked
against an independent sign-flip test and for calibration by seeded simulation (no real gap:
about 5% of runs below 0.05; a real gap: small p).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy

from culturesim.metrics.cultural_alignment import compute_alignment


def sex_case(rng, n, lean, P=20, k=3):
    """Women's and men's distributions differ; the model answers from a mix leaning towards women
    by ``lean`` (0.5: no lean)."""
    preds, refs, demo = [], [], []
    for _ in range(n):
        f, m = rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k))
        model = lean * f + (1 - lean) * m
        refs.append(((f + m) / 2).tolist())
        demo.append([{"group_type": "sex", "group": "female", "distribution": f.tolist(), "n": 500},
                     {"group_type": "sex", "group": "male", "distribution": m.tolist(), "n": 500}])
        preds.append(rng.choice(k, size=P, p=model).tolist())
    return preds, refs, demo


def test_gaps_match_scipy_and_an_independent_permutation_test():
    rng = np.random.default_rng(3)
    preds, refs, demo = sex_case(rng, 40, lean=0.65)
    dims = [["EVI"] if i % 2 else ["TDI"] for i in range(40)]
    r = compute_alignment(predictions=preds, references=refs, demographics=demo, value_dimensions=dims,
                          bootstrap_samples=2000, seed=1)
    gaps_js, gaps_kl = [], []
    for a, d in zip(preds, demo):
        p = np.bincount(a, minlength=3) / len(a)
        f, m = (np.asarray(g["distribution"]) for g in d)
        gaps_js.append(jensenshannon(p, m, base=2) - jensenshannon(p, f, base=2))
        gaps_kl.append(entropy(p + 1e-3, m + 1e-3) - entropy(p + 1e-3, f + 1e-3))
    gaps_js = np.array(gaps_js)
    pair = r["demographic_gaps"]["js"]["sex"]["pairs"]["female_vs_male"]
    assert pair["gap"] == pytest.approx(gaps_js.mean(), rel=1e-9)
    assert r["demographic_gaps"]["kl"]["sex"]["pairs"]["female_vs_male"]["gap"] == pytest.approx(np.mean(gaps_kl), rel=1e-9)
    assert pair["n_questions"] == 40 and pair["closer_to"] == ("female" if pair["gap"] > 0 else "male")
    assert pair["ci_low"] < pair["gap"] < pair["ci_high"]
    # independent sign-flip test, 20,000 flips
    flips = np.random.default_rng(9).choice([-1.0, 1.0], size=(20000, 40))
    p_ref = (1 + (np.abs(flips @ gaps_js / 40) >= abs(gaps_js.mean()) - 1e-9).sum()) / 20001
    assert pair["p_value"] == pytest.approx(p_ref, abs=0.01 + 0.1 * p_ref)
    # per value dimension: the same on that dimension's questions
    evi = r["per_dimension"]["EVI"]["demographic_gaps"]["js"]["sex"]["pairs"]["female_vs_male"]
    assert evi["gap"] == pytest.approx(gaps_js[1::2].mean(), rel=1e-9) and evi["n_questions"] == 20
    group = r["demographic_gaps"]["js"]["sex"]["group_mean"]
    assert group["male"] - group["female"] == pytest.approx(pair["gap"], rel=1e-9)
    assert r["demographic_gaps"]["js"]["age"]["pairs"]["18-29_vs_50+"]["gap"] is None


def test_permutation_p_value_is_calibrated_and_detects_a_lean():
    """No lean: about 5% of seeded runs have p < 0.05. A clear lean: nearly all do."""
    null_p, lean_p = [], []
    for seed in range(120):
        rng = np.random.default_rng(seed)
        preds, refs, demo = sex_case(rng, 30, lean=0.5)
        r = compute_alignment(predictions=preds, references=refs, demographics=demo, bootstrap_samples=400,
                              participant_bootstrap_samples=0, seed=seed)
        null_p.append(r["demographic_gaps"]["js"]["sex"]["pairs"]["female_vs_male"]["p_value"])
        if seed < 30:
            preds, refs, demo = sex_case(rng, 30, lean=0.8)
            r = compute_alignment(predictions=preds, references=refs, demographics=demo, bootstrap_samples=400,
                                  participant_bootstrap_samples=0, seed=seed)
            lean_p.append(r["demographic_gaps"]["js"]["sex"]["pairs"]["female_vs_male"]["p_value"])
    rate = np.mean(np.array(null_p) < 0.05)
    assert 0.01 <= rate <= 0.11, rate
    assert np.mean(np.array(lean_p) < 0.05) >= 0.9


def test_profile_by_shares_and_by_the_papers_counts():
    """The model prefers option 0. Women choose it more often (share 0.5 vs 0.4), but men are ten
    times as many, so more men than women choose it: the two rules disagree."""
    demo = [[{"group_type": "sex", "group": "female", "distribution": [0.5, 0.5], "n": 100},
             {"group_type": "sex", "group": "male", "distribution": [0.4, 0.6], "n": 1000}],
            [{"group_type": "sex", "group": "female", "distribution": [0.5, 0.5]},
             {"group_type": "sex", "group": "male", "distribution": [0.4, 0.6], "n": 1000}]]
    r = compute_alignment(predictions=[[0, 0, 1], [0, 0, 1]], references=[[0.45, 0.55], [0.45, 0.55]],
                          demographics=demo, bootstrap_samples=0, return_per_question=True)
    assert r["bias_profile_rule"] == "within_group_shares"
    assert r["bias_profile"]["all"]["sex"] == {"female": 2.0, "male": 0.0, "tie": 0.0}
    assert r["bias_profile_counts"]["all"]["sex"] == {"female": 0.0, "male": 1.0, "tie": 0.0}
    assert r["bias_profile_counts"]["n"]["sex"] == 1  # the second question lacks the women's n
    assert r["per_question"][0]["preferred_group_sex_counts"] == "male"
    assert r["per_question"][1]["preferred_group_sex_counts"] is None
    with pytest.raises(ValueError, match=r"question 0: the sex/female group's n=-3"):
        bad = [[dict(demo[0][0], n=-3), demo[0][1]]]
        compute_alignment(predictions=[[0, 1]], references=[[0.45, 0.55]], demographics=bad)
