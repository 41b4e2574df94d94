"""The report's estimator comparison: one model read four ways, side by side.

Why: sampling, option log-probabilities, verbalized shares and the Cao et al. baseline each
mislead on their own (position and label bias, format failures, a stated average instead of
a spread). A researcher wants them on the same items with intervals, and wants to know how
far what the model *states* about the population (verbalized, Cao) is from what it
*produces* when it answers (sampling, log-probabilities): the knowledge-to-simulation gap.

For runs of one model, culture and language (any number of readings):

- ``readings``: per run its estimator, plan, role (``stated``: verbalized or a ``cao`` plan;
  ``produced``: sampling with a DEF plan or log-probabilities; ``other``: CCSV), the
  questions it could score, and the metric's scores with their 95% question-bootstrap
  intervals and the normalised scores (1 = a perfect simulator of the run's size, 0 =
  uniform answers; probability vectors have floor 0, so their normalised score is measured
  against perfection). Runs that scored different question sets are not comparable
  score for score: ``common_questions`` counts the questions every run scored, and
  ``js_mean_common`` gives each run's mean JS over those alone (the metric's per-question
  values, averaged).
- ``gaps``: per (stated, produced) pair, the divergence of the stated distributions from the
  produced ones on the questions both scored, computed by the metric with the produced
  distribution in the place of the human one (JS, KL, Wasserstein with question-bootstrap
  intervals): 0 means the model knows what it does.

Everything is scored by ``culturesim.metrics.cultural_alignment``; this module only arranges runs.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any
from culturesim.metrics.cultural_alignment import SCORES, compute_alignment

__all__ = ["compare_estimators", "estimators_html", "reading_of"]

_NORMALISED = ("normalised_js", "normalised_kl", "normalised_wasserstein")


def reading_of(config: dict[str, Any]) -> tuple[str, str]:
    """``(reading, role)`` of a run: reading is its estimator, or ``cao``/``ccsv`` for the
    baselines; role is ``stated``, ``produced`` or ``other``."""
    estimator = str((config.get("estimator") or {}).get("name") or "sampling")
    plan = str(config.get("plan") or "")
    if plan == "cao":
        return ("cao" if estimator == "sampling" else f"{estimator} (cao prompt)"), "stated"
    if plan == "ccsv":
        return "ccsv", "other"
    if estimator == "verbalized":
        return estimator, "stated"
    return estimator, "produced"


def _per_question(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["id"]: p for p in run["metric"].get("per_question") or []}


def _row(run: dict[str, Any], common: set[str]) -> dict[str, Any]:
    m, config = run["metric"], run["config"]
    reading, role = reading_of(config)
    out: dict[str, Any] = {
        "label": run["label"], "reading": reading, "role": role, "estimator": reading.split(" ")[0],
        "plan": config.get("plan"), "participants": config.get("participants"),
        "n_questions": m.get("n_questions"), "non_ok_share": run["responses"].get("non_ok_share"),
    }
    for stat in SCORES:
        key = "match_rate" if stat == "match_rate" else f"{stat}_mean"
        out[key] = m.get(key)
        out[f"{key}_ci_low"] = m.get(f"{stat}_ci_low" if stat != "match_rate" else "match_rate_ci_low")
        out[f"{key}_ci_high"] = m.get(f"{stat}_ci_high" if stat != "match_rate" else "match_rate_ci_high")
    for key in _NORMALISED:
        out[key] = m.get(key)
        out[f"{key}_ci_low"] = m.get(f"{key}_ci_low")
        out[f"{key}_ci_high"] = m.get(f"{key}_ci_high")
    pq = _per_question(run)
    values = [pq[q]["js"] for q in common if q in pq and pq[q].get("js") is not None]
    out["js_mean_common"] = sum(values) / len(values) if values else None
    return out


def _gap(stated: dict[str, Any], produced: dict[str, Any], bootstrap_samples: int, seed: int) -> dict[str, Any]:

    a, b = _per_question(stated), _per_question(produced)
    by_id = {q.id: q for q in stated["questions"]}
    ids = [q for q in a if q in b and q in by_id]
    gap: dict[str, Any] = {"stated": stated["label"], "produced": produced["label"], "n_questions": len(ids)}
    if not ids:
        return gap
    m = compute_alignment(
        probabilities=[a[q]["model_distribution"] for q in ids],
        references=[b[q]["model_distribution"] for q in ids],
        ordinal=[by_id[q].ordinal for q in ids],
        question_ids=ids,
        bootstrap_samples=bootstrap_samples,
        seed=seed,
    )
    for stat in ("js", "kl", "wasserstein"):
        for suffix in ("mean", "ci_low", "ci_high"):
            # One question has no spread to resample: no interval rather than a zero-width one.
            gap[f"{stat}_{suffix}"] = m.get(f"{stat}_{suffix}") if suffix == "mean" or len(ids) > 1 else None
    gap["match_rate"] = m.get("match_rate")  # share of questions whose top option agrees
    return gap


def compare_estimators(runs: Sequence[dict[str, Any]], bootstrap_samples: int = 1000, seed: int = 0
                       ) -> dict[str, Any] | None:
    """The comparison for the first group of runs (same model, culture, languages) holding at
    least two readings; None when there is none. ``runs`` are the report's (``config``,
    ``metric`` with ``per_question``, ``responses``, ``questions``, ``label``)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for run in runs:
        c = run["config"]
        groups.setdefault((c.get("model"), c.get("culture"), tuple(c.get("languages") or ())), []).append(run)
    for (model, culture, languages), members in groups.items():
        if len({reading_of(m["config"]) for m in members}) < 2:
            continue
        scored = [set(_per_question(m)) for m in members]
        common = set.intersection(*scored) if scored else set()
        readings = [_row(m, common) for m in members]
        gaps = [_gap(s, p, bootstrap_samples, seed)
                for s in members if reading_of(s["config"])[1] == "stated"
                for p in members if reading_of(p["config"])[1] == "produced"]
        return {"model": model, "culture": culture, "languages": list(languages),
                "common_questions": len(common), "readings": readings, "gaps": gaps}
    return None


def estimators_html(section: dict[str, Any] | None, table: Callable[..., str]) -> str:
    """The report's HTML for ``compare_estimators``' output (``table(header, rows, cls)`` draws a table)."""
    if not section:
        return ""

    def ci(row: dict[str, Any], key: str) -> list[Any]:
        return [row.get(key), row.get(f"{key}_ci_low"), row.get(f"{key}_ci_high")]

    parts = [
        "<h2 id=estimators>Estimators: four readings of one model</h2>",
        f"<p>{html.escape(str(section['model']))}, {html.escape(str(section['culture']))}. Stated readings "
        "(verbalized shares, the Cao et al. average person) say what the model believes the population answers; "
        "produced readings (sampling, option log-probabilities) are what it answers. Intervals are 95% bootstrap "
        "intervals over questions; normalised scores: 1 = a perfect simulator of the run's size, 0 = uniform "
        "answers (probability vectors have no sampling floor). Runs that scored different questions are compared "
        f"on the {section['common_questions']} questions all of them scored in the column JS (common).</p>",
        table(["run", "reading", "role", "questions", "non-ok share", "KL", "KL CI low", "KL CI high", "JS",
               "JS CI low", "JS CI high", "JS (common)", "Wasserstein", "match rate", "normalised JS",
               "norm. JS CI low", "norm. JS CI high", "normalised KL"],
              [[r["label"], r["reading"], r["role"], r["n_questions"], r["non_ok_share"], *ci(r, "kl_mean"),
                *ci(r, "js_mean"), r["js_mean_common"], r["wasserstein_mean"], r["match_rate"],
                *ci(r, "normalised_js"), r["normalised_kl"]] for r in section["readings"]], "estimators"),
    ]
    if section["gaps"]:
        parts.append("<h3>Knowledge-to-simulation gap</h3><p>Divergence of each stated reading from each produced "
                     "one on the questions both scored (0 = the model states what it does); top-option agreement "
                     "is the share of questions whose most likely option is the same.</p>")
        parts.append(table(["stated", "produced", "questions", "JS", "JS CI low", "JS CI high", "KL", "Wasserstein",
                            "top-option agreement"],
                           [[g["stated"], g["produced"], g["n_questions"], g.get("js_mean"), g.get("js_ci_low"),
                             g.get("js_ci_high"), g.get("kl_mean"), g.get("wasserstein_mean"), g.get("match_rate")]
                            for g in section["gaps"]], "estimator-gaps"))
    return "\n".join(parts)
