"""The human split-half ceiling from the real GSS panel microdata."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import entropy

from metrics.cultural_alignment import compute_alignment
from simulator.analysis.ceiling import human_ceiling, split_half_distributions
from simulator.questions import load_questions


def _gss_questions(n=40):
    return [q for q in load_questions("US") if q.source == "GSS"][:n]


def test_halves_are_weighted_shares_of_disjoint_respondents(sources):
    q = next(q for q in load_questions("US") if q.source_variable == "fefam")
    pairs = split_half_distributions([q], sources / "gss" / "gss_panel_2016_2018_2020.parquet", repeats=3, seed=1)
    assert len(pairs) == 1 and pairs[0]["year"] == 2020
    df = pd.read_parquet(sources / "gss" / "gss_panel_2016_2018_2020.parquet", columns=["year", "wtssall", "fefam"])
    df = df[(df.year == 2020) & df.fefam.isin([1, 2, 3, 4])]
    assert pairs[0]["n"] == len(df)
    full = np.array([df.wtssall[df.fefam == c].sum() for c in (1, 2, 3, 4)])
    for a, b in pairs[0]["halves"]:
        assert abs(a.sum() - 1) < 1e-12 and abs(b.sum() - 1) < 1e-12
        # Two halves that partition the sample: their weighted mixture is the whole sample's distribution,
        # so each half is between the whole and the other half, never identical to a resample with replacement.
        assert not np.allclose(a, b)
        assert np.all(np.minimum(a, b) <= full / full.sum() + 1e-12)
        assert np.all(np.maximum(a, b) >= full / full.sum() - 1e-12)


def test_ceiling_is_below_a_random_model(sources):
    questions = _gss_questions()
    ceiling = human_ceiling(questions, sources / "gss" / "gss_panel_2016_2018_2020.parquet", repeats=10)
    assert ceiling["n_questions"] >= 10
    by_id = {q.id: q for q in questions}
    rng = np.random.default_rng(0)
    ids = [p["id"] for p in ceiling["per_question"]]
    random_model = [rng.dirichlet(np.ones(by_id[i].num_options)).tolist() for i in ids]
    scores = compute_alignment(probabilities=random_model, references=[list(by_id[i].human_distribution) for i in ids],
                               bootstrap_samples=0, return_per_question=True)
    assert ceiling["kl_mean"] < scores["kl_mean"] / 5
    assert ceiling["js_mean"] < scores["js_mean"]
    # The metric's KL is scipy's entropy(p, q) (with its documented smoothing): check one by hand.
    first = scores["per_question"][0]
    p = np.array(random_model[0]) + 1e-3
    h = np.array(by_id[ids[0]].human_distribution) + 1e-3
    assert abs(first["kl"] - entropy(p / p.sum(), h / h.sum())) < 1e-9
