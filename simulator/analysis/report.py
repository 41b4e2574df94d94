"""``culturesim report RUN_DIR... --out DIR``: the paper's analyses for one or more runs.

Produces ``report.json`` (every number), ``report.html`` (stands alone: figures embedded as
PNG data, no server needed) and ``figures/*.png``. The HTML tables are rendered from the same
dict that is written to report.json, so the two cannot disagree. All scoring goes through the
metric module (via ``culturesim.simulator.analysis.scoring``) and each analysis is computed by its
own module in ``analysis/`` (``culture_map``, ``bias``, ``insensitivity``, ``ablation``,
``invariance``); this module only arranges numbers and pictures.

Sections: worth N respondents (the headline, first), what the numbers rest on, preference
distribution (KL/JS/Wasserstein per question and per value dimension, with CIs) beside the two
yardsticks (the floor at the run's P and the survey's own noise), cultural variation map,
preference bias (sex x age profile), insensitivity (six dimensions, rules plus an optional
judge), diversity ablation (when runs differ only by plan), language ablation (when runs differ
only by language) and structure fidelity. Runs of different P, question sets or dataset and
metric versions get a visible note (``comparability``).
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culturesim.metrics.cultural_alignment import DIVERGENCES
from culturesim.simulator.analysis import figures
from culturesim.simulator.analysis.ablation import language_ablation, plan_ablation
from culturesim.simulator.analysis.bias import bias_by_dimension
from culturesim.simulator.analysis.culture_map import cross_culture_scores, culture_map_for_runs
from culturesim.simulator.analysis.estimators import compare_estimators, estimators_html
from culturesim.simulator.analysis.glossary import METRIC_TERMS, glossary, glossary_html
from culturesim.simulator.analysis.insensitivity import insensitivity_for_run
from culturesim.simulator.analysis.structure_report import structure_for_report, structure_html
from culturesim.simulator.analysis.results_table import dataset_version
from culturesim.simulator.analysis.invariance import MIN_CI_QUESTIONS, RESULT_FILE
from culturesim.simulator.analysis.scoring import (
    MIN_ANSWERS_PER_QUESTION,
    MIN_QUESTIONS_PER_DIMENSION,
    PARSE_RATE_WARNING,
    load_config,
    load_responses,
    load_run_questions,
    score_run,
    support_warnings,
    worth_line,
)
from culturesim.simulator.participants import PlanSettings
from culturesim.simulator.runfolder import CONFIG_FILE, Status

REPORT_VERSION = "1.1"

SCORE_MEANING_KEYS = tuple(
    k for stat in DIVERGENCES for k in (
        f"{stat}_mean", f"{stat}_participant_ci_low", f"{stat}_participant_ci_high", f"floor_{stat}_mean",
        f"survey_noise_{stat}_mean", f"uniform_{stat}_mean", f"normalised_{stat}", f"normalised_{stat}_ci_low",
        f"normalised_{stat}_ci_high", f"n_normalised_{stat}")) + (
    "kl_bc_mean", "match_rate", "participants_mean", "n_few_participants", "worth_n", "worth_n_ci_low",
    "worth_n_ci_high", "worth_n_infinite")
"""The metric's numbers that say what a score means (worth N, the floor at the run's P, the
survey's own noise, the uniform baseline, the normalised score), shown in the report's "What a
score means" table."""

#: At or below this many participants per question a run's scores are flagged (the metric gives
#: no bias-corrected value, participant interval or normalised score below 3: ``n_few_participants``).
FEW_PARTICIPANTS = 2

log = logging.getLogger(__name__)


def run_label(config: dict[str, Any]) -> str:
    model = str(config.get("model") or "model").split("/")[-1]
    langs = config.get("languages") or []
    lang = f" {'/'.join(langs)}" if langs else ""
    estimator = (config.get("estimator") or {}).get("name")
    how = f" · {estimator}" if estimator else ""
    return f"{model}{how} · {config.get('plan')} · {config.get('culture')}{lang}"


def _sampled(run: dict[str, Any]) -> bool:
    """Whether a run's rows are parsed answers (not a logprob/verbalized distribution per row)."""
    return not (run["config"].get("estimator") or {}).get("name")


def _unique_labels(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return out


def run_participants(metric: dict[str, Any]) -> float | None:
    """Parsed answers per question (the run's P as the metric saw it), None for probability runs."""
    return metric.get("participants_mean")


def _p_label(p: float | None) -> str:
    return "–" if p is None else f"{p:.0f}" if abs(p - round(p)) < 0.05 else f"{p:.1f}"


def run_settings(config: dict[str, Any], run: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the run is, for the report's first table: model, backend, plan, participants,
    questions, generation budget, seed, date and the versions of every part that changes numbers."""
    run = run or {}
    backend = config.get("backend") or {}
    plan = config.get("plan_settings") or {}
    default = PlanSettings()
    mods = config.get("modifications")
    return {
        "model": config.get("model"),
        "backend": backend.get("backend") if isinstance(backend, dict) else backend,
        "plan": config.get("plan"),
        "modifications": ", ".join(mods) if mods else ("none" if mods is not None else None),
        "culture": config.get("culture"),
        "languages": ", ".join(config.get("languages") or []) or None,
        "participants": config.get("participants"),
        "questions asked": len(config.get("question_ids") or []),
        "max new tokens": config.get("max_new_tokens"),
        "max beams": plan.get("max_beams", default.max_beams) if plan else None,
        "max memory": plan.get("max_memory", default.max_memory) if plan else None,
        "temperature range": ", ".join(str(x) for x in plan["temperature_range"]) if plan.get("temperature_range") else None,
        "top_p range": ", ".join(str(x) for x in plan["top_p_range"]) if plan.get("top_p_range") else None,
        "options shuffled per participant": plan.get("shuffle_options") if plan else None,
        "seed": config.get("seed"),
        "date": config.get("created_at"),
        "versions": ", ".join(f"{k.removesuffix('_version')} {v}" for k, v in sorted(
            {**{k: v for k, v in config.items() if k.endswith("_version")},
             **(run.get("versions") or {}), "report_version": REPORT_VERSION}.items()) if v is not None),
        "command": " ".join([Path(str(c[0])).name, *map(str, c[1:])]) if (c := config.get("command")) else None,
    }


def run_support(responses: dict[str, Any], metric: dict[str, Any], questions: dict[str, Any]) -> dict[str, Any]:
    """What the run's numbers rest on: responses by status, parsed answers per question (every
    question asked, dropped ones with the reason) and the thresholds below which a number is flagged."""
    per_q = responses.get("answers_per_question") or {
        p["id"]: p.get("n_participants") for p in metric.get("per_question") or []}
    sampled = metric.get("model_input") != "probabilities"  # logprob/verbalized: whole distributions
    dropped = {d["id"]: d["reason"] for d in responses.get("questions_dropped") or []}
    dropped.update({qid: "no parsed answer" for qid in responses.get("questions_unanswered") or [] if qid not in dropped})
    table = []
    for qid in list(per_q) + [q for q in dropped if q not in per_q]:
        n = per_q.get(qid) or 0
        q = questions.get(qid)
        table.append({"id": qid, "question": getattr(q, "question", None), "parsed_answers": n,
                      "note": dropped.get(qid) or (f"fewer than {MIN_ANSWERS_PER_QUESTION} parsed answers"
                                                   if sampled and n < MIN_ANSWERS_PER_QUESTION else "")})
    counts = [r["parsed_answers"] for r in table if r["id"] not in dropped]
    return {
        "rows": responses.get("rows"),
        "expected_rows": responses.get("expected_rows"),
        "parse_rate": responses.get("parse_rate", None if responses.get("non_ok_share") is None
                                    else 1 - responses["non_ok_share"]),
        "status_counts": {k: v for k, v in (responses.get("status_counts") or {}).items() if v},
        "parsed_answers_per_question_mean": sum(counts) / len(counts) if counts else None,
        "parsed_answers_per_question_min": min(counts) if counts else None,
        "questions_scored": responses.get("questions_scored"),
        "questions_dropped": [{"id": k, "reason": v} for k, v in dropped.items()],
        "per_question": table,
        "thresholds": responses.get("thresholds"),
    }


def _insensitivity_warnings(summary: dict[str, dict[str, Any]]) -> list[str]:
    thin = [f"{d} (n={v['decided']})" for d, v in summary.items() if 0 < (v.get("decided") or 0) < MIN_ANSWERS_PER_QUESTION]
    none = [d for d, v in summary.items() if not v.get("decided")]
    out = []
    if thin:
        out.append(f"Insensitivity rates decided on fewer than {MIN_ANSWERS_PER_QUESTION} responses: {', '.join(thin)}.")
    if none:
        out.append(f"Insensitivity dimensions nothing was decided on (shown as n/a, not 0): {', '.join(none)}.")
    return out


def _figure_png(fig: Any, path: Path) -> str:
    import matplotlib.pyplot as plt  # after figures chose the Agg backend (headless)

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    data = buffer.getvalue()
    path.write_bytes(data)
    return base64.b64encode(data).decode("ascii")


def comparability(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Whether the runs ask one culture the same questions (by ``parallel_id``, so a language
    ablation's runs count as the same questions), and if not, which differ and how."""
    def qset(run: dict[str, Any]) -> frozenset[str]:
        return frozenset(q.parallel_id or q.id for q in run["questions"])

    first = runs[0]
    cultures = sorted({str(r["config"].get("culture")) for r in runs})
    differ = []
    for run in runs[1:]:
        shared = len(qset(run) & qset(first))
        if run["config"].get("culture") != first["config"].get("culture") or qset(run) != qset(first):
            differ.append({"dir": run["dir"], "culture": run["config"].get("culture"), "questions": len(qset(run)),
                           "shared_with_first": shared})
    return {"comparable": not differ, "first": {"dir": first["dir"], "culture": first["config"].get("culture"),
                                                "questions": len(qset(first))},
            "cultures": cultures, "differing_runs": differ, "notes": comparability_notes(runs, differ)}


def comparability_notes(runs: Sequence[dict[str, Any]], differ: Sequence[dict[str, Any]] = ()) -> list[str]:
    """Plain-language notes for runs whose numbers do not compare one to one: different
    participants per question (the plug-in divergences, their floors and the normalised JS and
    Wasserstein all move with P; worth N and the normalised KL do not), different question sets,
    different dataset or metric versions. Empty when the runs compare."""
    notes = []
    ps = {r.get("label") or r["dir"]: run_participants(r.get("metric") or {}) for r in runs}
    known = {label: p for label, p in ps.items() if p is not None}
    if len({round(p, 1) for p in known.values()}) > 1:
        notes.append("These runs have different numbers of participants per question ("
                     + ", ".join(f"{label}: P = {_p_label(p)}" for label, p in known.items())
                     + "). Plug-in KL, JS and Wasserstein, their floors and the normalised JS and Wasserstein depend "
                     "on P, so compare those only between runs of the same P; worth N respondents, the bias-corrected "
                     "KL and the normalised KL are for unlimited participants and compare across P.")
    if differ:
        notes.append(f"{len(differ)} run(s) ask a different culture or question set than the first run: each run's "
                     "numbers rest on its own questions (see the list below).")
    for name, get in (("dataset", lambda r: dataset_version(r["config"])),
                      ("metric", lambda r: str(((r.get("run") or {}).get("versions") or {}).get("metric_version")
                                               or "unknown"))):
        versions = {r.get("label") or r["dir"]: get(r) for r in runs}
        if len(set(versions.values())) > 1:
            notes.append(f"These runs were scored with different {name} versions ("
                         + ", ".join(f"{label}: {v}" for label, v in versions.items())
                         + "); numbers of two versions do not compare.")
    return notes


def _publish(staging: Path, out: Path) -> None:
    """Move the finished report from ``staging`` into ``out`` (replacing an older report's files)."""
    out.mkdir(parents=True, exist_ok=True)
    for item in sorted(staging.iterdir()):
        dest = out / item.name
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        os.replace(item, dest)
    staging.rmdir()


def build_report(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    judge_backend: Any = None,
    dataset_dir: str | Path | None = None,
    bootstrap_samples: int = 1000,
    allow_mixed: bool = False,
) -> dict[str, Any]:
    """Analyse the runs; write report.json, report.html and figures/; return the report dict.

    Nothing is written into the run folders, and nothing half-done into ``out_dir``: the report
    is made in a hidden folder beside it and moved in when complete. Runs of different cultures
    or question sets are refused (their numbers side by side would compare different questions)
    unless ``allow_mixed``; then ``report["comparability"]`` and the page say which runs differ.
    """
    if not run_dirs:
        raise ValueError("Give at least one RUN_DIR (a folder written by `culturesim simulate`).")
    final = Path(out_dir)
    for run_dir in run_dirs:
        if final.resolve() == Path(run_dir).resolve() or Path(run_dir).resolve() in final.resolve().parents:
            raise ValueError(f"--out {final} is inside the run folder {run_dir}; a report never writes into its "
                             "inputs: choose another --out")
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    try:
        report = _build_report(run_dirs, staging, judge_backend, dataset_dir, bootstrap_samples, allow_mixed)
        _publish(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("report for %d run(s) written to %s", len(report["runs"]), final)
    return report


def _build_report(run_dirs: Sequence[str | Path], out: Path, judge_backend: Any, dataset_dir: str | Path | None,
                  bootstrap_samples: int, allow_mixed: bool) -> dict[str, Any]:

    (out / "figures").mkdir(parents=True, exist_ok=True)

    batteries = [Path(d) for d in run_dirs if (Path(d) / RESULT_FILE).exists()]
    run_dirs = [d for d in run_dirs if Path(d) not in batteries]
    if batteries and not run_dirs:  # only batteries: their unperturbed runs are the runs shown
        run_dirs = [b / "base-a" for b in batteries if (b / "base-a" / CONFIG_FILE).exists()]
        if not run_dirs:
            raise ValueError(f"{batteries[0]} has {RESULT_FILE} but no base-a run folder; give the run folders too")
    runs = []
    for run_dir in run_dirs:
        config = load_config(run_dir)
        scores = score_run(run_dir, bootstrap_samples=bootstrap_samples, return_per_question=True, write=False)
        if not scores.get("metric"):
            raise ValueError(f"{run_dir} has no scorable answers (status counts: {scores['responses']['status_counts']})")
        questions = load_run_questions(run_dir)
        runs.append({"dir": str(run_dir), "config": config, "metric": scores["metric"], "responses": scores["responses"],
                     "questions": questions, "rows": load_responses(run_dir), "label": run_label(config),
                     "run": scores.get("run") or {}, "structure": scores.get("structure")})
    for run, label in zip(runs, _unique_labels([r["label"] for r in runs])):
        run["label"] = label
    mix = comparability(runs)
    if not mix["comparable"] and not allow_mixed:
        first = mix["first"]
        parts = "; ".join(f"{d['dir']}: {d['culture']}, {d['questions']} questions, {d['shared_with_first']} shared"
                          for d in mix["differing_runs"])
        raise ValueError(f"the runs do not ask one culture the same questions: {first['dir']} is {first['culture']} with "
                         f"{first['questions']} questions, but {parts}. Side by side their numbers would compare "
                         "different questions. Give runs of one culture and question set, or pass --allow-mixed to "
                         "report them anyway (the report then says which runs differ)")

    report: dict[str, Any] = {"report_version": REPORT_VERSION, "comparability": mix, "runs": []}
    for run in runs:
        m = run["metric"]
        qmap = {q.id: q for q in run["questions"]}
        report["runs"].append({
            "label": run["label"],
            "dir": run["dir"],
            "model": run["config"].get("model"),
            "plan": run["config"].get("plan"),
            "culture": run["config"].get("culture"),
            "versions": {k: run["config"].get(k) for k in ("prompt_version", "parser_version", "runner_version")},
            "settings": run_settings(run["config"], run["run"]),
            "responses": run["responses"],
            "support": run_support(run["responses"], m, qmap),
            "warnings": support_warnings(run["responses"], m),
            "overall": {k: m.get(k) for k in (
                "n_questions", "kl_mean", "kl_ci_low", "kl_ci_high", "js_mean", "js_ci_low", "js_ci_high",
                "wasserstein_mean", "wasserstein_ci_low", "wasserstein_ci_high", "match_rate", "match_rate_ci_low",
                "match_rate_ci_high", "distinct_answers_mean", "entropy_mean", "unanimous_share")},
            "worth_n": worth_line(m, run["config"].get("culture")),
            "participants_per_question": run_participants(m),
            "score_meaning": {k: m.get(k) for k in SCORE_MEANING_KEYS if k in m},
            "refusals": m.get("refusals"),
            "demographic_gaps": m.get("demographic_gaps"),
            "per_dimension": {d: {k: v for k, v in s.items() if k != "bias_profile"} for d, s in (m.get("per_dimension") or {}).items()},
            "per_question": [{k: p.get(k) for k in ("id", "kl", "js", "wasserstein", "match", "model_distribution",
                                                    "human_distribution", "distinct_answers", "floor_kl",
                                                    "survey_noise_kl", "worth_n")} for p in m.get("per_question") or []],
            "bias_profile": m.get("bias_profile"),
            "bias_by_dimension": bias_by_dimension(m),
            "insensitivity": insensitivity_for_run(run["rows"] if _sampled(run) else [], qmap, judge_backend),
        })
    for r in report["runs"]:
        r["warnings"] += _insensitivity_warnings(r["insensitivity"]["summary"])
    report["culture_map"] = culture_map_for_runs(runs, Path(dataset_dir) if dataset_dir else None)
    report["cross_culture"] = cross_culture_scores(runs)
    report["ablation"] = plan_ablation([r for r in runs if _sampled(r)])
    report["language_ablation"] = language_ablation([r for r in runs if _sampled(r)])

    report["estimators"] = compare_estimators(runs, bootstrap_samples=bootstrap_samples)
    report["invariance"] = [invariance_for_report(b) for b in batteries]
    report["structure"], structure_figs = structure_for_report(runs)  # structure fidelity: structure_report

    figs: dict[str, str] = {}
    fdir = out / "figures"
    per_dim = {r["label"]: r["per_dimension"] for r in report["runs"]}
    figs["dimension_kl"] = _figure_png(figures.dimension_bars(per_dim, "kl"), fdir / "dimension_kl.png")
    figs["dimension_js"] = _figure_png(figures.dimension_bars(per_dim, "js"), fdir / "dimension_js.png")
    for name, fig in structure_figs.items():
        figs[name] = _figure_png(fig, fdir / f"{name}.png")
    figs["question_kl"] = _figure_png(figures.question_distribution(
        {r["label"]: [p["kl"] for p in r["per_question"]] for r in report["runs"]},
        yardsticks=_question_yardsticks(report["runs"])), fdir / "question_kl.png")
    if report["culture_map"] and "points" in report["culture_map"]:
        figs["culture_map"] = _figure_png(figures.culture_map(report["culture_map"], report["culture_map"]["humans"]),
                                          fdir / "culture_map.png")
    for i, r in enumerate(report["runs"]):
        figs[f"bias_{i}"] = _figure_png(figures.bias_heatmaps(r["bias_by_dimension"], f"Preference bias: {r['label']}"),
                                        fdir / f"bias_{i}.png")
    figs["insensitivity"] = _figure_png(figures.insensitivity_radar(
        {r["label"]: r["insensitivity"]["summary"] for r in report["runs"]}), fdir / "insensitivity.png")
    if report["ablation"]:
        plans = report["ablation"]["plans"]
        figs["ablation"] = _figure_png(figures.ablation_bars(
            {p: v["distinct_answers_mean"] or 0 for p, v in plans.items()},
            {p: v["gain_over_none_pct"] for p, v in plans.items()}), fdir / "ablation.png")
    report["figures"] = {name: f"figures/{name}.png" for name in figs}

    with open(out / "report.json", "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=1, ensure_ascii=False, default=_jsonable)
    (out / "report.html").write_text(render_html(report, figs), encoding="utf-8")
    return report


def _question_yardsticks(runs: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per-question KL yardsticks for the per-question figure: what a perfect simulator with each
    run's P scores (one series per distinct P) and the survey's own noise (per question, once)."""
    out: dict[str, list[float]] = {}
    noise: dict[str, float] = {}
    for r in runs:
        name = f"perfect simulator, P = {_p_label(r.get('participants_per_question'))}"
        floors = [p["floor_kl"] for p in r["per_question"] if p.get("floor_kl") is not None]
        if floors and name not in out:
            out[name] = floors
        noise.update({p["id"]: p["survey_noise_kl"] for p in r["per_question"] if p.get("survey_noise_kl") is not None})
    if noise:
        out["survey's own noise"] = list(noise.values())
    return out


def invariance_for_report(battery: Path) -> dict[str, Any]:
    """The headline numbers of a `culturesim invariance` folder, as the report shows them."""
    result = json.loads((battery / RESULT_FILE).read_text(encoding="utf-8"))
    return {
        "dir": str(battery),
        "model": result.get("model"),
        "questions": result.get("questions"),
        "runs": {name: {"rows": r.get("rows"), "parse_rate": r.get("parse_rate")} for name, r in result["runs"].items()},
        "position_bias": {k: v for k, v in (result.get("position_bias") or {}).items() if k != "per_question"} or None,
        "movement": {p: {k: v for k, v in m.items() if k != "per_question"} for p, m in result["movement"].items()},
        "bias_corrected_alignment": result.get("bias_corrected_alignment"),
        "source_order_alignment": result.get("source_order_alignment"),
    }


def invariance_html(batteries: list[dict[str, Any]]) -> str:
    """The invariance battery section: movement under each perturbation beside the sampling-noise
    yardstick, the position-bias index beside its content-only reference, and the
    permutation-averaged (bias-corrected) alignment beside the source-order one."""
    parts = ["<h2 id=invariance>Invariance battery</h2>",
             "<p>The same questions asked under controlled perturbations (option order, label style, reversed "
             "scales, paraphrases). <b>Movement</b> is the JS distance between the perturbed and the unperturbed "
             "runs' distributions; the <b>sampling noise</b> is the JS distance between two unperturbed runs with "
             "different seeds, the yardstick: movement whose excess interval lies above 0 is more than noise. "
             "The <b>bias-corrected alignment</b> pools the answers of all option orders (position effects average "
             "out); compare it with the source-order alignment on the same questions.</p>"]
    for b in batteries:
        parts.append(f"<h3>{fmt(b['model'])} ({html.escape(b['dir'])}), {fmt(b['questions'])} questions</h3>")
        rows = [[p, m.get("questions"), m.get("movement_mean"), m.get("noise_mean"), m.get("excess_mean"),
                 m.get("excess_ci_low"), m.get("excess_ci_high"),
                 f"n/a (no interval under {MIN_CI_QUESTIONS} questions)" if m.get("beyond_noise") is None
                 else fmt(m["beyond_noise"])]  # yes / no
                for p, m in b["movement"].items()]
        parts.append(_table(["perturbation", "questions", "movement (JS)", "sampling noise (JS)", "excess",
                             "excess CI low", "excess CI high", "beyond noise"], rows, "invariance-movement"))
        pb = b.get("position_bias")
        if pb:
            parts.append(f"<p>Position-bias index {fmt(pb.get('index'))} (answers following the content alone: mean "
                         f"{fmt(pb.get('null_mean'))}, 95th percentile {fmt(pb.get('null_q95'))}; p = "
                         f"{fmt(pb.get('p_value'), 4)}; {fmt(pb.get('answers'))} answers). 0: answers follow the "
                         "content; 1: the displayed position alone decides.</p>")
            parts.append(_table(["displayed position", "observed share", "content-predicted share"],
                                [[p.get("position"), p.get("observed_share"), p.get("predicted_share")]
                                 for p in pb.get("positions") or []], "invariance-positions"))
        else:
            parts.append("<p>Position-bias index: not computed (the battery had no option-order runs).</p>")
        rows = []
        for name, a in (("bias-corrected (permutation-averaged)", b.get("bias_corrected_alignment")),
                        ("source order", b.get("source_order_alignment"))):
            if a:
                rows.append([name, a.get("questions"), a.get("kl_mean"), a.get("kl_ci_low"), a.get("kl_ci_high"),
                             a.get("js_mean"), a.get("js_ci_low"), a.get("js_ci_high"), a.get("match_rate")])
        if rows:
            parts.append(_table(["alignment", "questions", "KL", "KL CI low", "KL CI high", "JS", "JS CI low",
                                 "JS CI high", "match rate"], rows, "invariance-alignment"))
        parts.append(_table(["run", "rows", "parse rate"],
                            [[name, r["rows"], r["parse_rate"]] for name, r in b["runs"].items()], "invariance-runs"))
    return "\n".join(parts)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def fmt(value: Any, digits: int = 3) -> str:
    """How every number is shown in the HTML (the tests compare against report.json this way)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.{digits}f}"
    return html.escape(str(value))


def _setting(value: Any) -> str:
    return "–" if value is None or value == "" else ("yes" if value is True else "no" if value is False else str(value))


def _table(header: list[str], rows: list[list[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    # Numbers right-aligned (class n), text left; the cell text itself is what fmt() gives.
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" if isinstance(c, str) else f'<td class=n>{fmt(c)}</td>'
                                    for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _img(figs: dict[str, str], name: str, alt: str) -> str:
    if name not in figs:
        return ""
    return f'<figure><img class="figure" data-figure="{name}" alt="{html.escape(alt)}" src="data:image/png;base64,{figs[name]}"></figure>'


def _comparability_notes(mix: dict[str, Any] | None) -> str:
    """The visible note when runs of different P, question sets or versions are side by side."""
    notes = (mix or {}).get("notes") or []
    if not notes:
        return ""
    return ('<div class="comparability warnings"><b>Comparing these runs</b><ul>'
            + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul></div>")


def _mixed_notice(mix: dict[str, Any] | None) -> str:
    if not mix or mix.get("comparable", True):
        return ""
    first = mix["first"]
    items = "".join(f"<li>{html.escape(str(d['dir']))}: {html.escape(str(d['culture']))}, {d['questions']} questions, "
                    f"{d['shared_with_first']} shared with the first run</li>" for d in mix["differing_runs"])
    return (f'<div class="mixed-runs"><p><strong>These runs are not directly comparable.</strong> The first run '
            f"({html.escape(str(first['dir']))}) asks {html.escape(str(first['culture']))} {first['questions']} questions; "
            f"these differ in culture or questions, so each run's numbers rest on its own questions:</p><ul>{items}</ul></div>")


def _cross_culture_table(cross: dict[str, Any] | None) -> str:
    """Runs of several cultures on the comparable items they all answered (culture_map.cross_culture_scores)."""
    if not cross:
        return ""
    rows = [[str(r["label"]), str(r["culture"]), r["n_questions"], r["kl_mean"], r["js_mean"]] for r in cross["runs"]]
    return (f'<div class="cross-culture"><h2>Across cultures, on the same items</h2><p>Mean divergence over the '
            f"{len(cross['items'])} comparable items (asked identically in US, CN, JP and EG) that every run answered; "
            "each run's overall numbers below rest on its own culture's questions.</p>"
            + _table(["run", "culture", "questions", "KL", "JS"], rows, "cross-culture") + "</div>")


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}"
    "table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;"
    "text-align:left;vertical-align:top}th{background:#f3f3f3}td.n{text-align:right}"
    "img.figure{max-width:100%;border:1px solid #eee}"
    ".warnings{background:#fff4e5;border-left:4px solid #e08a00;padding:.5em 1em;margin:1em 0}"
    ".warnings li{margin:.2em 0}.note{color:#555;font-size:13px}nav a{margin-right:1em}"
)

_STATUS_MEANING = {status.value: status.meaning for status in Status}


def _ci_cells(stats: dict[str, Any], stat: str) -> list[Any]:
    """The interval cells of a mean: a mean over one question has no interval and says so."""
    if (stats.get("n_questions") or 0) == 1:
        return ["none (1 question)", "none (1 question)"]
    return [stats.get(f"{stat}_ci_low"), stats.get(f"{stat}_ci_high")]


def pct(value: Any) -> str:
    return "–" if value is None else f"{value:.0%}"


def _run_sections(r: dict[str, Any]) -> list[str]:
    """What one run's numbers rest on: warnings, responses by status, parsed answers per question."""
    sup = r["support"]
    th = sup.get("thresholds") or {}
    parts = [f"<h3>{html.escape(r['label'])}</h3>"]
    ok = sup["status_counts"].get("ok", 0)
    per_q_mean = sup.get("parsed_answers_per_question_mean")
    parts.append(
        f"<p class=rests-on><b>Parse rate {pct(sup.get('parse_rate'))}</b>: {ok} of {fmt(sup.get('rows'))} responses "
        f"parsed to an answer (expected {fmt(sup.get('expected_rows'))} = participants × questions); "
        f"{fmt(sup.get('questions_scored'))} questions scored, "
        + (f"{per_q_mean:.1f} parsed answers per scored question on average (fewest: "
           f"{sup['parsed_answers_per_question_min']}); " if per_q_mean is not None else "")
        + f"{len(sup['questions_dropped'])} question(s) dropped"
        + (": " + ", ".join(html.escape(d["id"]) for d in sup["questions_dropped"]) if sup["questions_dropped"] else "")
        + ".</p>")
    warnings = r.get("warnings") or []
    parts.append(
        '<div class=warnings><b>Warnings</b> (thresholds: parse rate below '
        f"{th.get('parse_rate_warning', PARSE_RATE_WARNING):.0%}; a question with fewer than "
        f"{th.get('min_answers_per_question', MIN_ANSWERS_PER_QUESTION)} parsed answers; a dimension with fewer than "
        f"{th.get('min_questions_per_dimension', MIN_QUESTIONS_PER_DIMENSION)} questions; an insensitivity rate "
        f"decided on fewer than {MIN_ANSWERS_PER_QUESTION} responses)"
        + ("<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in warnings) + "</ul>" if warnings
           else "<p>None: every number rests on at least the thresholds above.</p>")
        + "</div>")
    total = max(1, sup.get("rows") or 0)
    parts.append(_table(["status", "responses", "share", "meaning"],
                        [[k, v, pct(v / total), _STATUS_MEANING.get(k, "")] for k, v in
                         sorted(sup["status_counts"].items(), key=lambda kv: -kv[1])], "status"))
    parts.append(_table(["question", "parsed answers", "note"],
                        [[p["id"], p["parsed_answers"], p["note"]] for p in sup["per_question"]], "support"))
    return parts


def _meaning_sections(runs: list[dict[str, Any]]) -> list[str]:
    """What a score means: the model's plug-in score beside its two yardsticks (the floor at the
    run's own P: what a perfect simulator with these participants scores; the survey's own noise:
    how far the human distribution itself is from its population), the bias-corrected KL
    (unlimited participants), the uniform baseline and the normalised score; the refusal channel
    and the demographic gaps: the metric's numbers, each defined in the glossary."""
    parts = ["<h3 id=meaning>What a score means: the yardsticks</h3>",
             "<p>A plug-in score (the participants' answers as they are) is never 0, even for a perfect simulator: "
             "with P participants per question sampling noise alone leaves the <b>floor at P</b>. The human "
             "distribution is itself a survey estimate; the <b>survey's own noise</b> is its expected divergence from "
             "the population (respondents over the design effect). The <b>bias-corrected KL</b> estimates the model's "
             "divergence with unlimited participants, comparable across runs of any size and with the survey noise. "
             "The normalised score puts the model between a perfect simulator (1) and random answers (0); the "
             "normalised KL uses the bias-corrected KL and does not depend on P, the normalised JS and Wasserstein "
             "are at the run's P and compare only between runs of the same P.</p>"]
    for r in runs:
        sm = r.get("score_meaning") or {}
        if not sm:
            continue
        P = _p_label(r.get("participants_per_question"))
        rows = []
        for stat, name in (("kl", "KL"), ("js", "JS"), ("wasserstein", "Wasserstein")):
            if sm.get(f"{stat}_mean") is None:
                continue
            lo, hi = sm.get(f"normalised_{stat}_ci_low"), sm.get(f"normalised_{stat}_ci_high")
            bc = (f"{fmt(sm.get('kl_bc_mean'))} [{fmt(sm.get('kl_participant_ci_low'))}, "
                  f"{fmt(sm.get('kl_participant_ci_high'))}]" if stat == "kl" and sm.get("kl_bc_mean") is not None
                  else "–")
            norm = sm.get(f"normalised_{stat}")
            rows.append([name, sm.get(f"{stat}_mean"), sm.get(f"floor_{stat}_mean"), sm.get(f"survey_noise_{stat}_mean"),
                         bc, sm.get(f"uniform_{stat}_mean"),
                         "–" if norm is None else fmt(norm) if stat == "kl" else f"{fmt(norm)} (at P = {P})",
                         f"[{fmt(lo)}, {fmt(hi)}]" if lo is not None and hi is not None else "–",
                         sm.get(f"n_normalised_{stat}")])
        parts.append(f"<h4>{html.escape(r['label'])} (P = {P} participants per question)</h4>")
        parts.append(_table(["measure", "model (plug-in, at P)", f"floor at P = {P} (perfect simulator)",
                             "survey's own noise", "bias-corrected (unlimited participants) [95% CI]",
                             "uniform baseline", "normalised score", "normalised CI", "questions (normalised)"],
                            rows, "meaning yardsticks"))
        ref = r.get("refusals") or {}
        if ref:
            parts.append("<p>Refusal channel (kept apart from the divergences): the model gave no valid answer in "
                         f"{pct(ref.get('model_non_answer_share_mean'))} of responses per question on average; "
                         + (f"real respondents gave no substantive answer in {pct(ref.get('human_nonsubstantive_share_mean'))}"
                            f" (error model − human {fmt(ref.get('error_mean'))}, CI [{fmt(ref.get('error_ci_low'))}, "
                            f"{fmt(ref.get('error_ci_high'))}], over {ref.get('n_with_human_share')} questions)."
                            if ref.get("human_nonsubstantive_share_mean") is not None
                            else "the questions carry no human non-substantive share to compare with.") + "</p>")
        gaps = (r.get("demographic_gaps") or {}).get("kl") or {}
        rows = []
        for family, block in gaps.items():
            for pair, g in ((block or {}).get("pairs") or {}).items():
                n = g.get("n_questions")
                rows.append([family, pair.replace("_vs_", " vs "), g.get("gap"), g.get("ci_low"), g.get("ci_high"),
                             g.get("p_value"), n, str(g.get("closer_to") or "–"),
                             f"rests on {n} question(s)" if n is not None and n < MIN_QUESTIONS_PER_DIMENSION else ""])
        if rows:
            parts.append("<p>Demographic gaps on KL: gap = mean KL from the second group minus from the first "
                         "(above 0: the model is closer to the first group), with its bootstrap CI and a permutation "
                         "p-value.</p>")
            parts.append(_table(["family", "groups", "gap", "CI low", "CI high", "p-value", "questions", "closer to",
                                 "note"], rows, "gaps"))
    return parts


def _worth_section(runs: list[dict[str, Any]]) -> str:
    """The headline, first in the report: each run's worth N respondents with its interval, and a
    flag where a run has too few participants per question for it."""
    items = []
    for r in runs:
        P = r.get("participants_per_question")
        flag = (f" <b>Flagged: only {_p_label(P)} participant(s) per question</b> (at most {FEW_PARTICIPANTS}): no "
                "bias-corrected score, participant interval, normalised score or worth N rests on so few."
                if P is not None and P <= FEW_PARTICIPANTS else "")
        items.append(f"<li><b>{html.escape(r['label'])}</b>: {html.escape(r.get('worth_n') or '')}.{flag}</li>")
    return ("<h2 id=worth>Worth N respondents</h2><p>How many real respondents the model is worth: a random sample of "
            "that many people from the survey's population is, in expectation, as far from the population's answers "
            "(KL) as the model is with unlimited participants; ∞ (\"as close as the survey itself\") when the model "
            "is within the survey's own sampling noise. Higher is better.</p><ul class=worth>" + "".join(items)
            + "</ul>")


def render_html(report: dict[str, Any], figs: dict[str, str]) -> str:
    runs = report["runs"]
    overall_rows = [[r["label"], r["overall"]["n_questions"], r["overall"]["kl_mean"], r["overall"]["kl_ci_low"],
                     r["overall"]["kl_ci_high"], r["overall"]["js_mean"], r["overall"]["wasserstein_mean"],
                     r["overall"]["match_rate"], r["overall"]["distinct_answers_mean"],
                     pct(r["support"].get("parse_rate")), r["support"]["rows"]] for r in runs]
    setting_names = list(runs[0]["settings"]) if runs else []
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>culturesim report</title><style>",
        _CSS, "</style></head><body>",
        "<h1>culturesim report</h1>",
        _worth_section(runs),
        _comparability_notes(report.get("comparability")),
        _mixed_notice(report.get("comparability")),
        _cross_culture_table(report.get("cross_culture")),
        "<p>How close a language model's answers to survey questions come to real respondents' answers: each run "
        "asks the model the questions as many simulated participants, counts the parsed answers per question into "
        "a distribution and compares it with the human one. Every abbreviation is defined in the "
        f"<a href=#glossary>glossary</a> at the end. Report version {fmt(report['report_version'])}.</p>",
        "<nav><a href=#run>The run</a><a href=#rests-on>What it rests on</a><a href=#overall>Preference distribution"
        "</a><a href=#culture-map>Culture map</a><a href=#bias>Preference bias</a><a href=#insensitivity>"
        "Insensitivity</a><a href=#structure>Structure fidelity</a><a href=#meaning>Yardsticks</a><a href=#glossary>Glossary</a></nav>",
        "<h2 id=run>The run</h2>",
        _table(["setting"] + [r["label"] for r in runs],
               [[name] + [_setting(r["settings"].get(name)) for r in runs] for name in setting_names], "settings"),
        "<h2 id=rests-on>What the numbers rest on</h2>",
        "<p>Only responses the parser could read as an answer (status ok) are counted; a question without one is "
        "dropped from every score. The fewer the parsed answers behind a distribution, the more its divergence "
        "reflects chance.</p>",
    ]
    for r in runs:
        parts += _run_sections(r)
    parts += [
        "<h2 id=overall>Preference distribution</h2>",
        "<p>Lower KL, JS and Wasserstein = closer to the human distribution; higher match rate = better. Intervals "
        "are 95% bootstrap CIs over questions.</p>",
        _table(["run", "questions", "KL", "KL CI low", "KL CI high", "JS", "Wasserstein", "match rate",
                "distinct answers", "parse rate", "responses"], overall_rows, "overall"),
        _img(figs, "dimension_kl", "KL per value dimension"),
        _img(figs, "dimension_js", "JS per value dimension"),
        _img(figs, "question_kl", "KL per question"),
    ]
    parts += _meaning_sections(runs)
    for r in runs:
        rows = [[d, st.get("n_questions"), st.get("kl_mean"), *_ci_cells(st, "kl"), st.get("js_mean"),
                 st.get("wasserstein_mean"), st.get("match_rate"),
                 f"rests on {st.get('n_questions')} question(s)" if (st.get("n_questions") or 0)
                 < MIN_QUESTIONS_PER_DIMENSION else ""] for d, st in sorted(r["per_dimension"].items())]
        parts.append(f"<h3>{html.escape(r['label'])}: per value dimension</h3>")
        parts.append(_table(["dimension", "questions", "KL", "KL CI low", "KL CI high", "JS", "Wasserstein",
                             "match rate", "note"], rows, "per-dimension"))
    cmap = report.get("culture_map")
    parts.append("<h2 id=culture-map>Cultural variation map</h2>")
    if cmap and "points" in cmap:
        parts.append(_img(figs, "culture_map", "culture map"))
        parts.append(_table(["entity", "PC1", "PC2"], [[k, v[0], v[1]] for k, v in cmap["points"].items()], "culture-map"))
    else:
        parts.append(f"<p>Not drawn: {fmt((cmap or {}).get('error', 'no positions'))}</p>")
    parts.append("<h2 id=bias>Preference bias</h2>")
    for i, r in enumerate(runs):
        parts.append(_img(figs, f"bias_{i}", f"bias {r['label']}"))
        prof = r.get("bias_profile") or {}
        rows = [[kind, fam, g, f"{c:g}"] for kind in ("all", "matched", "mismatched")
                for fam, groups in (prof.get(kind) or {}).items() for g, c in groups.items()]
        parts.append(_table(["question set", "family", "group", "questions (ties split)"], rows, "bias"))
    parts.append("<h2 id=insensitivity>Insensitivity</h2>")
    parts.append(_img(figs, "insensitivity", "insensitivity radar"))
    for r in runs:
        s = r["insensitivity"]["summary"]
        parts.append(f"<h3>{html.escape(r['label'])}</h3>")
        parts.append(_table(["dimension", "flagged", "decided", "undecided", "by rule", "by judge", "rate", "note"],
                            [[d, v["flagged"], v["decided"], v["undecided"], v["by_rule"], v["by_judge"], v["rate"],
                              "nothing decided" if not v["decided"] else f"rests on {v['decided']} response(s)"
                              if v["decided"] < MIN_ANSWERS_PER_QUESTION else ""]
                             for d, v in s.items()], "insensitivity"))
    if report.get("ablation"):
        parts.append("<h2 id=ablation>Diversity ablation</h2>")
        parts.append(_img(figs, "ablation", "ablation"))
        ab = report["ablation"]
        parts.append(f"<p>{ab['participants']} participants, {ab['questions']} questions, options "
                     f"{'shuffled per participant' if ab['shuffle_options'] is True else 'in source order' if ab['shuffle_options'] is False else 'mixed'}"
                     f", max_new_tokens {ab['max_new_tokens']}, beams up to {ab['max_beams']}. Distinct answers are counted among "
                     f"parsed answers; the rarefied figure counts them among the same number of parsed answers per question in "
                     f"every plan (on average {fmt(ab['rarefied_m_mean'], 2)}, over {ab['rarefied_questions']} questions).</p>")
        parts.append(_table(["plan", "distinct answers", "gain over none (%)", "parse rate", "parsed per question",
                             "rarefied distinct", "rarefied gain (%)", "questions ahead / behind / level", "entropy",
                             "unanimous share", "KL"],
                            [[p, v["distinct_answers_mean"], v["gain_over_none_pct"], v["parse_rate"],
                              v["parsed_per_question_mean"], v["rarefied_distinct_mean"], v["rarefied_gain_over_none_pct"],
                              f"{v['questions_ahead']} / {v['questions_behind']} / {v['questions_level']}",
                              v["entropy_mean"], v["unanimous_share"], v["kl_mean"]] for p, v in ab["plans"].items()], "ablation"))
    if report.get("language_ablation"):
        la = report["language_ablation"]
        parts.append("<h2 id=language>Language ablation</h2>")
        parts.append(_table(["language", "KL", "JS", "match rate", "distinct answers"],
                            [[lang, la[lang]["kl_mean"], la[lang]["js_mean"], la[lang]["match_rate"],
                              la[lang]["distinct_answers_mean"]] for lang in (la["native_language"], "en")], "language"))

    parts.append(estimators_html(report.get("estimators"), _table))
    parts.append(structure_html(report.get("structure"), figs, _table, _img))
    if report.get("invariance"):
        parts.append(invariance_html(report["invariance"]))
    parts.append("<h2 id=glossary>Glossary</h2>")
    parts.append(glossary_html(glossary(metric_terms=METRIC_TERMS)))
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)
