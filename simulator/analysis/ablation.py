"""The ablation tables, read from run folders already scored (the report's ``ablation`` and
``language_ablation`` sections).

Why apart from the runs: ``culturesim ablate`` (``culturesim.simulator.experiments.ablation``)
writes one ordinary run folder per plan and language; any set of runs that differ only by plan
or only by language, however they were made, gets the same tables in ``culturesim report``.
"""

from __future__ import annotations

from typing import Any

from culturesim.simulator.analysis.diversity import compare_plans

__all__ = ["language_ablation", "plan_ablation"]


def plan_ablation(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Diversity gain of each plan over `none` among runs sharing model, culture and questions.

    The headline is the paper's: the metric's distinct answers per question (among parsed
    answers, over the questions with at least one) and its gain over `none`. Next to it,
    because plans parse at different rates and a count of distinct answers grows with the
    number of answers counted, each plan's parse rate and the rarefied distinct answers
    (``culturesim.simulator.analysis.diversity``: the same number of parsed answers per question in every plan).
    ``shuffle_options`` says whether options were shuffled per participant: shuffling turns a
    position-biased model's answers into near-uniform ones in every plan, `none` included, so
    the diversity ablation runs in source order unless asked (``culturesim ablate --shuffle``).
    """
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for run in runs:
        c = run["config"]
        key = (c.get("model"), c.get("culture"), tuple(c.get("question_ids") or ()), tuple(c.get("languages") or ()))
        groups.setdefault(key, []).append(run)
    for members in groups.values():
        plans = {m["config"].get("plan"): m for m in members}
        if "none" not in plans or len(plans) < 2:
            continue
        base = plans["none"]["metric"].get("distinct_answers_mean")
        table = {}
        for plan, m in plans.items():
            distinct = m["metric"].get("distinct_answers_mean")
            gain = (distinct - base) / base * 100 if (distinct is not None and base) else None
            table[plan] = {"distinct_answers_mean": distinct, "entropy_mean": m["metric"].get("entropy_mean"),
                           "unanimous_share": m["metric"].get("unanimous_share"), "gain_over_none_pct": gain,
                           "kl_mean": m["metric"].get("kl_mean")}
        equal = compare_plans({plan: m["rows"] for plan, m in plans.items()})
        for plan, row in equal["plans"].items():
            table[plan].update(row)
        settings = {plan: m["config"].get("plan_settings") or {} for plan, m in plans.items()}
        shuffles = {s.get("shuffle_options") for s in settings.values()}
        return {"baseline": "none", "plans": table,
                "shuffle_options": shuffles.pop() if len(shuffles) == 1 else sorted(shuffles, key=str),
                "participants": plans["none"]["config"].get("participants"),
                "max_new_tokens": plans["none"]["config"].get("max_new_tokens"),
                "max_beams": settings["none"].get("max_beams"),
                "questions": equal["questions"], "rarefied_questions": equal["rarefied_questions"],
                "rarefied_m_mean": equal["rarefied_m_mean"],
                "paper_reference": {"all": 79.8, "memory": 76.5, "unit": "% gain in distinct answers over none"}}
    return None


def language_ablation(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Native-language vs English runs of one culture on parallel questions."""
    by_culture: dict[tuple, dict[str, dict[str, Any]]] = {}
    for run in runs:
        c = run["config"]
        langs = tuple(c.get("languages") or ())
        if len(langs) == 1:
            by_culture.setdefault((c.get("model"), c.get("culture"), c.get("plan")), {})[langs[0]] = run
    for (model, culture, plan), by_lang in by_culture.items():
        if "en" in by_lang and len(by_lang) >= 2:
            native = next(lang for lang in by_lang if lang != "en")
            a, b = by_lang[native]["metric"], by_lang["en"]["metric"]
            return {"model": model, "culture": culture, "plan": plan, "native_language": native,
                    native: {k: a.get(k) for k in ("kl_mean", "js_mean", "match_rate", "distinct_answers_mean")},
                    "en": {k: b.get(k) for k in ("kl_mean", "js_mean", "match_rate", "distinct_answers_mean")}}
    return None
