"""Diversity at equal sample size, so that plans with different parse rates can be compared.

Why: the diversity ablation counts distinct answers per question (the paper's figure), but
only parsed answers can be counted. A run whose responses parse half as often has half as
many answers per question, and the number of distinct answers among n draws grows with n
whatever the underlying distribution: with 3 parsed answers out of 20 a question can show at
most 3 distinct answers. On a small model (SmolLM2-135M parses roughly a third to a half of
its answers) a plan that merely parses more (memory shows the model earlier ``Answer:``
lines) would look "more diverse" for that reason alone, and one that parses less would look
less diverse. So next to the raw count the ablation reports the *rarefied* count
(Hurlbert 1971; Sanders 1968): per question, the expected number of distinct answers among
``m`` answers drawn without replacement from the parsed ones, where ``m`` is the smallest
number of parsed answers any compared plan has for that question. Every plan is then
measured on the same number of answers per question, and a gain means the answers are
spread more, not that more of them were parsed.

The expectation is exact, not resampled: for a question with ``N`` parsed answers of which
``n_i`` chose answer ``i``, ``E[distinct in m] = sum_i 1 - C(N - n_i, m) / C(N, m)``.
An answer is the tuple of chosen source option indices (multiple choice: the set of options
chosen, as the metric counts distinct responses), from rows with status ``ok``.
"""

from __future__ import annotations

import math
from culturesim.simulator.runfolder import Status
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["answer_counts", "compare_plans", "rarefied_distinct"]


def rarefied_distinct(counts: Sequence[int], m: int) -> float:
    """Expected number of distinct answers among ``m`` of the ``sum(counts)`` answers, drawn
    without replacement (``counts[i]``: how many chose answer ``i``).

    >>> rarefied_distinct([2, 2], 2)  # 1 + 4/6: two draws differ with probability 4/6
    1.6666666666666667
    >>> rarefied_distinct([3, 1, 1], 5)
    3.0
    """
    counts = [int(c) for c in counts if c]
    if any(c < 0 for c in counts):
        raise ValueError(f"counts={counts!r} must be non-negative")
    total = sum(counts)
    if not 1 <= m <= total:
        raise ValueError(f"m={m!r} must be in 1..{total} (the number of answers); draw at most as many as there are")
    denominator = math.comb(total, m)
    return float(sum(1 - math.comb(total - c, m) / denominator for c in counts))


def answer_counts(rows: Iterable[Mapping[str, Any]]) -> dict[str, Counter[tuple[int, ...]]]:
    """Per question id, how many parsed (``ok``) rows gave each answer (tuple of source option indices)."""
    out: dict[str, Counter[tuple[int, ...]]] = {}
    for row in rows:
        if row.get("status") != Status.OK:
            continue
        answer = tuple(sorted(int(i) for i in row.get("option_indices") or ()))
        if answer:
            out.setdefault(row["question_id"], Counter())[answer] += 1
    return out


def compare_plans(rows_by_plan: Mapping[str, Iterable[Mapping[str, Any]]], baseline: str = "none",
                  min_answers: int = 2) -> dict[str, Any]:
    """Per plan: parse rate, parsed answers per question, and distinct answers per question
    both raw and rarefied to the same ``m`` per question across plans, with gains over
    ``baseline``; and on how many questions the plan has more, fewer or as many distinct
    answers as the baseline (a gain carried by one or two questions is not a finding).

    Raw figures are over the questions every plan asked; the rarefied figure is over the
    questions where every plan has at least ``min_answers`` parsed answers (with one answer
    every plan scores 1, which says nothing).
    """
    if baseline not in rows_by_plan:
        raise ValueError(f"baseline {baseline!r} is not among the plans {sorted(rows_by_plan)}")
    if min_answers < 1:
        raise ValueError(f"min_answers={min_answers!r} must be >= 1")
    rows = {plan: list(r) for plan, r in rows_by_plan.items()}
    asked = {plan: {r["question_id"] for r in rs} for plan, rs in rows.items()}
    common = sorted(set.intersection(*asked.values())) if asked else []
    counts = {plan: answer_counts(rs) for plan, rs in rows.items()}
    m = {q: min(sum(counts[p].get(q, Counter()).values()) for p in rows) for q in common}
    rare_questions = [q for q in common if m[q] >= min_answers]
    table: dict[str, dict[str, Any]] = {}
    for plan, rs in rows.items():
        n_rows = sum(1 for r in rs if r["question_id"] in common)
        n_ok = sum(1 for r in rs if r["question_id"] in common and r.get("status") == Status.OK)
        c = counts[plan]
        raw = [len(c.get(q, ())) for q in common]
        rare = [rarefied_distinct(list(c[q].values()), m[q]) for q in rare_questions]
        table[plan] = {
            "parse_rate": n_ok / n_rows if n_rows else None,
            "parsed_per_question_mean": n_ok / len(common) if common else None,
            "distinct_answers_all_questions_mean": sum(raw) / len(raw) if raw else None,
            "rarefied_distinct_mean": sum(rare) / len(rare) if rare else None,
        }
    base_raw = [len(counts[baseline].get(q, ())) for q in common]
    for plan in rows:
        raw = [len(counts[plan].get(q, ())) for q in common]
        table[plan]["questions_ahead"] = sum(a > b for a, b in zip(raw, base_raw))
        table[plan]["questions_behind"] = sum(a < b for a, b in zip(raw, base_raw))
        table[plan]["questions_level"] = sum(a == b for a, b in zip(raw, base_raw))
    base = table[baseline]["rarefied_distinct_mean"]
    for row in table.values():
        value = row["rarefied_distinct_mean"]
        row["rarefied_gain_over_none_pct"] = (value - base) / base * 100 if (value is not None and base) else None
    return {
        "questions": len(common),
        "rarefied_questions": len(rare_questions),
        "rarefied_m_mean": sum(m[q] for q in rare_questions) / len(rare_questions) if rare_questions else None,
        "min_answers": min_answers,
        "plans": table,
    }
