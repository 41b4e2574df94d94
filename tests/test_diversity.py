"""Rarefied distinct answers: checked against brute-force enumeration of every subset."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from culturesim.simulator.analysis.diversity import answer_counts, compare_plans, rarefied_distinct


def _brute(counts: list[int], m: int) -> float:
    """Mean number of distinct labels over every m-subset of the answers (no formula)."""
    answers = [label for label, c in enumerate(counts) for _ in range(c)]
    subsets = list(itertools.combinations(range(len(answers)), m))
    return sum(len({answers[i] for i in s}) for s in subsets) / len(subsets)


@pytest.mark.parametrize("counts,m", [([5, 1], 1), ([5, 1], 3), ([2, 2, 2], 2), ([7, 3, 1, 1], 4), ([1, 1, 1, 1], 3),
                                      ([9], 5), ([4, 0, 2], 6)])
def test_rarefied_matches_enumeration(counts, m):
    assert rarefied_distinct(counts, m) == pytest.approx(_brute(counts, m), abs=1e-12)


def test_rarefied_by_hand():
    # [2, 2], two draws: they differ unless both come from one label, 2 * C(2,2)/C(4,2) = 2/6.
    assert rarefied_distinct([2, 2], 2) == pytest.approx(1 + 4 / 6)
    assert rarefied_distinct([3, 1, 1], 5) == 3.0  # all answers drawn: the raw count
    assert rarefied_distinct([10, 1], 1) == 1.0


@pytest.mark.parametrize("m", [0, 5])
def test_rarefied_rejects_bad_m(m):
    with pytest.raises(ValueError, match="m="):
        rarefied_distinct([2, 2], m)


def _row(q, status, indices):
    return {"question_id": q, "status": status, "option_indices": indices}


def test_compare_plans_equal_sample_size():
    # `none` parses 2 of 4 answers with 2 distinct; `more` parses 4 with 2 distinct (3 + 1).
    # Raw counts tie at 2; at m = 2 `none` gives 2.0 and `more` (1 - C(1,2)/C(4,2)) + (1 - C(3,2)/C(4,2)) = 1.5.
    none = [_row("q", "ok", [0]), _row("q", "ok", [1]), _row("q", "no_answer", []), _row("q", "no_answer", [])]
    more = [_row("q", "ok", [0]), _row("q", "ok", [0]), _row("q", "ok", [0]), _row("q", "ok", [2])]
    out = compare_plans({"none": none, "more": more})
    assert out["plans"]["none"]["parse_rate"] == 0.5 and out["plans"]["more"]["parse_rate"] == 1.0
    assert out["plans"]["none"]["distinct_answers_all_questions_mean"] == 2
    assert out["plans"]["more"]["distinct_answers_all_questions_mean"] == 2
    assert out["plans"]["none"]["rarefied_distinct_mean"] == 2.0
    assert out["plans"]["more"]["rarefied_distinct_mean"] == pytest.approx(_brute([3, 1], 2)) == pytest.approx(1.5)
    assert out["plans"]["more"]["rarefied_gain_over_none_pct"] == pytest.approx(-25.0)
    assert out["rarefied_m_mean"] == 2
    assert (out["plans"]["more"]["questions_ahead"], out["plans"]["more"]["questions_level"]) == (0, 1)


def test_answer_counts_multiple_choice_as_sets():
    rows = [_row("q", "ok", [2, 0]), _row("q", "ok", [0, 2]), _row("q", "ok", [0]), _row("q", "refusal", [1])]
    assert answer_counts(rows) == {"q": Counter({(0, 2): 2, (0,): 1})}
