"""Results: the scores table, the figures and the report of a scored run folder.

The Space adds no scoring of its own: scores come from ``culturesim.simulator.analysis.scoring.score_run``
(the ``cultural_alignment`` metric), figures from ``culturesim.simulator.analysis.figures`` and the report
from ``culturesim.simulator.analysis.report``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # the Space renders figures off-screen, in worker threads
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from culturesim.simulator.questions import Question  # noqa: E402
from culturesim.simulator.runfolder import CONFIG_FILE, RESPONSES_FILE, read_config  # noqa: E402

import culturesim.space.common  # noqa: E402,F401  (Agg backend and fonts before any figure)
from culturesim.simulator.analysis import figures  # noqa: E402
from culturesim.simulator.analysis.bias import bias_by_dimension  # noqa: E402
from culturesim.simulator.analysis.culture_map import culture_map_for_runs  # noqa: E402
from culturesim.simulator.analysis.insensitivity import insensitivity_for_run  # noqa: E402
from culturesim.simulator.analysis.scoring import load_responses, load_run_questions, score_run, worth_line  # noqa: E402
from culturesim.space.common import EMBEDDED_MODEL  # noqa: E402
from culturesim.space.explore import wrap  # noqa: E402
from culturesim.space.glossary import EMBEDDED_PARSE_NOTE, STATUSES  # noqa: E402
from culturesim.space.jobs import variation_note  # noqa: E402
from culturesim.metrics.cultural_alignment import describe  # noqa: E402
from culturesim.simulator.analysis.report import build_report  # noqa: E402

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# Results: scores, figures, report
# --------------------------------------------------------------------------------------


@dataclass
class JobResult:
    """A scored run folder, ready to show."""

    run_dir: Path
    scores: dict[str, Any]
    table: pd.DataFrame
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


SCORE_COLUMNS = ["scope", "statistic", "value", "ci low", "ci high", "questions", "meaning"]
SCORE_STATS = (("kl", "kl_mean"), ("js", "js_mean"), ("wasserstein", "wasserstein_mean"), ("match_rate", "match_rate"))
DIVERSITY_STATS = ("distinct_answers_mean", "entropy_mean", "human_entropy_mean", "unanimous_share")
REFUSAL_STATS = {  # the metric's "refusals" glossary line, one key at a time
    "model_non_answer_share_mean": "share of the model's replies with no valid answer (refusals, unparsed, errors)",
    "human_nonsubstantive_share_mean": "share of real respondents asked who gave no substantive answer (don't "
                                       "know, no answer, refused); where the dataset has it",
    "error_mean": "model minus human non-answer share: 0 is best, above 0 the model declines more than people",
}


def _meaning(key: str) -> str:
    """The metric's own one-line meaning of an output key (``OUTPUT_GLOSSARY``), or ""."""
    return describe(key) or ""


def scores_table(scores: dict[str, Any]) -> pd.DataFrame:
    """The metric's headline numbers with their 95% bootstrap CIs and one-line meanings.

    For all questions: each divergence, its normalised score (1 = a perfect simulator of this
    size, 0 = random answers), its two yardsticks (the floor at the run's P and the survey's own
    noise) and uniform baseline, the match rate, the refusal channel and the
    diversity numbers; then each value dimension's divergences, match rate and normalised KL
    (meanings as above). Nothing is computed here: every number is the metric's.
    """
    metric = scores.get("metric") or {}
    records = []

    def add(scope: str, statistic: str, stats: dict[str, Any], key: str, ci: str | None, n_key: str, meaning: bool):
        if stats.get(key) is None:
            return
        records.append({"scope": scope, "statistic": statistic, "value": stats[key],
                        "ci low": stats.get(f"{ci}_ci_low") if ci else None,
                        "ci high": stats.get(f"{ci}_ci_high") if ci else None,
                        "questions": stats.get(n_key), "meaning": _meaning(key) if meaning else ""})

    def block(scope: str, stats: dict[str, Any], full: bool) -> None:
        for stat, key in SCORE_STATS:
            n_key = "n_ordinal" if stat == "wasserstein" else "n_questions"
            add(scope, stat, stats, key, stat, n_key, full)
            if stat == "match_rate" or (not full and stat != "kl"):
                continue
            add(scope, f"normalised {stat}", stats, f"normalised_{stat}", f"normalised_{stat}", f"n_normalised_{stat}",
                full)
            if full:
                add(scope, f"floor {stat} (perfect simulator at this P)", stats, f"floor_{stat}_mean", None, n_key, True)
                add(scope, f"survey noise {stat}", stats, f"survey_noise_{stat}_mean", None, n_key, True)
                add(scope, f"uniform {stat}", stats, f"uniform_{stat}_mean", None, n_key, True)

    if metric.get("worth_n") is not None or metric.get("worth_n_infinite"):
        records.append({"scope": "all questions", "statistic": "worth N respondents",
                        "value": float("inf") if metric.get("worth_n_infinite") else metric["worth_n"],
                        "ci low": metric.get("worth_n_ci_low"),
                        "ci high": metric.get("worth_n_ci_high") if metric.get("worth_n_ci_high") is not None
                        else float("inf"),
                        "questions": metric.get("n_questions"), "meaning": _meaning("worth_n")})
    block("all questions", metric, True)
    add("all questions", "bias-corrected kl", metric, "kl_bc_mean", "kl_participant", "n_questions", True)
    refusals = metric.get("refusals") or {}
    for key, meaning in REFUSAL_STATS.items():
        add("refusals", key, refusals, key, "error" if key == "error_mean" else None, "n_questions", False)
        if records and records[-1]["statistic"] == key:
            records[-1]["meaning"] = meaning
    for key in DIVERSITY_STATS:
        add("diversity", key, metric, key, None, "n_questions", True)
    for dim, stats in (metric.get("per_dimension") or {}).items():
        block(dim, stats, False)
    table = pd.DataFrame.from_records(records, columns=SCORE_COLUMNS)
    for column in ("value", "ci low", "ci high"):
        table[column] = table[column].map(lambda v: None if v is None else round(float(v), 4))
    return table


def _note_figure(title: str, message: str) -> Any:
    """A figure that says why a chart cannot be drawn for this run (shown instead of a blank)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 2.6), dpi=110)
    ax = fig.add_subplot()
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    ax.text(0.5, 0.5, wrap(message, 70).replace("…", ""), ha="center", va="center", fontsize=9, wrap=True,
            transform=ax.transAxes)
    return fig


FIGURE_TITLES = {
    "dimensions": "KL divergence per value dimension",
    "culture_map": "Cultural variation map",
    "bias": "Preference bias (sex x age)",
    "insensitivity": "Insensitivity radar",
    "questions": "KL divergence per question",
}
_FIGURE_LOCK = threading.Lock()  # pyplot keeps global state; the Space draws from several threads


def run_label(scores: dict[str, Any]) -> str:
    run = scores.get("run") or {}
    model = str(run.get("model") or "model").rsplit("/", 1)[-1]
    return f"{model} [{run.get('plan') or '?'}]"


def _culture_map_figure(label: str, metric: dict[str, Any], questions: Sequence[Question],
                        dataset_dir: str | Path | None) -> Any:
    projection = culture_map_for_runs([{"label": label, "metric": metric, "questions": list(questions)}],
                                      Path(dataset_dir) if dataset_dir else None)
    if not projection or "points" not in projection or label not in projection["points"]:
        reason = (projection or {}).get("error") or "the run's questions cover no value dimension"
        raise ValueError(f"{reason}. Ask more questions (or select them by value dimension).")
    return figures.culture_map(projection, humans=projection["humans"])


def _bias_figure(label: str, metric: dict[str, Any], questions: Sequence[Question], cultures: list[str]) -> Any:
    if not any(q.demographics for q in questions):
        raise ValueError(f"these {', '.join(cultures)} questions have no human answers by sex and age (only the "
                         "GSS questions, culture US, have them), so there is no group to compare with")
    profile = bias_by_dimension(metric)
    if not any(profile.values()):
        raise ValueError("none of the scored questions with sex and age data is tagged with a value dimension")
    return figures.bias_heatmaps(profile, title=f"Preference bias of {label}")


def result_figures(scores: dict[str, Any], questions: Sequence[Question], rows: Sequence[dict[str, Any]],
                   dataset_dir: str | Path | None = None) -> dict[str, Any]:
    """The run's figures (``culturesim.simulator.analysis.figures``), each drawn from the metric's numbers; a
    figure that cannot be drawn for this run says why instead."""
    metric = scores.get("metric") or {}
    label = run_label(scores)
    per_question = metric.get("per_question") or []
    cultures = sorted({q.culture for q in questions})
    makers: dict[str, Callable[[], Any]] = {
        "dimensions": lambda: figures.dimension_bars({label: metric["per_dimension"]}),
        "questions": lambda: figures.question_distribution(
            {label: [r["kl"] for r in per_question if r["kl"] is not None]},
            yardsticks={"perfect simulator with this run's P": [r.get("floor_kl") for r in per_question],
                        "survey's own noise": [r.get("survey_noise_kl") for r in per_question]}),
        "culture_map": lambda: _culture_map_figure(label, metric, questions, dataset_dir),
        "bias": lambda: _bias_figure(label, metric, questions, cultures),
        "insensitivity": lambda: figures.insensitivity_radar(
            {label: insensitivity_for_run(rows, {q.id: q for q in questions})["summary"]}),
    }
    out: dict[str, Any] = {}
    for name, make in makers.items():
        with _FIGURE_LOCK:
            try:
                if not metric:
                    raise ValueError("no question has a usable answer, so there is nothing to score")
                out[name] = make()
            except (ValueError, KeyError, FileNotFoundError) as exc:
                log.info("figure %s not drawn: %s", name, exc)
                out[name] = _note_figure(FIGURE_TITLES[name], f"Not drawn for this run: {exc}")
            plt.close("all")  # the Figures stay usable; pyplot forgets them
    return out


def run_notes(run_dir: str | Path, scores: dict[str, Any], rows: Sequence[dict[str, Any]],
              questions: Sequence[Question]) -> str:
    """What the scores leave out, as markdown: generation settings the backend could not vary
    (Claude), the questions with no usable answer and why, and why the embedded model parses
    badly."""
    notes = []
    config = read_config(run_dir) if (Path(run_dir) / CONFIG_FILE).exists() else {}
    lost = variation_note(run_dir)
    if lost:
        notes.append(f"⚠️ **{lost}.**")
    texts = {q.id: q.question for q in questions}
    by_question: dict[str, Counter[str]] = {}
    for r in rows:
        by_question.setdefault(r.get("question_id"), Counter())[str(r.get("status"))] += 1
    unusable = [(qid, c) for qid, c in by_question.items() if not c.get("ok")]
    if unusable:
        items = [f"- {texts.get(qid, qid)[:120]} (`{qid}`): " + ", ".join(f"{n} {s}" for s, n in c.most_common())
                 for qid, c in unusable[:20]]
        notes.append(f"**{len(unusable)} question{'s' if len(unusable) != 1 else ''} got no usable answer** and "
                     "are not scored:\n" + "\n".join(items))
    statuses = Counter(str(r.get("status")) for r in rows)
    bad = {s: n for s, n in statuses.items() if s != "ok"}
    if bad:
        notes.append("**Replies not counted:** " + "; ".join(
            f"{n} {s} ({STATUSES.get(s, s)})" for s, n in sorted(bad.items(), key=lambda kv: -kv[1])))
        if config.get("model") == EMBEDDED_MODEL or str(config.get("model", "")).endswith("SmolLM2-135M-Instruct"):
            notes.append(EMBEDDED_PARSE_NOTE)
    return "\n\n".join(notes)


def report_files(run_dir: str | Path, dataset_dir: str | Path | None = None,
                 bootstrap_samples: int = 500) -> tuple[list[Path], str]:
    """The run's ``report.html`` and ``report.json`` from ``culturesim.simulator.analysis.report.build_report``,
    and a note; ``([], why)`` when no report could be written for this run.

    """
    run_dir = Path(run_dir)
    out = run_dir.parent / f"{run_dir.name}-report"  # beside the run: a report never writes into its inputs
    try:
        with _FIGURE_LOCK:
            build_report([run_dir], out, dataset_dir=dataset_dir, bootstrap_samples=bootstrap_samples)
            plt.close("all")
    except Exception as exc:  # noqa: BLE001 - a failed report must not hide the scores already shown
        log.warning("report for %s not written: %s", run_dir, exc)
        return [], f"no report: {exc}"
    files = [p for p in (out / "report.html", out / "report.json") if p.exists()]
    return files, "report written"


def score_folder(run_dir: str | Path, dataset_dir: str | Path | None = None, bootstrap_samples: int = 500) -> JobResult:
    """Score a run folder through ``culturesim.simulator.analysis.scoring.score_run`` and draw its figures (the
    report is :func:`report_files`, separate because it takes longer)."""
    run_dir = Path(run_dir)
    scores = score_run(run_dir, bootstrap_samples=bootstrap_samples, seed=0, return_per_question=True, write=True)
    questions = load_run_questions(run_dir)
    rows = load_responses(run_dir)
    responses = scores["responses"]
    metric = scores.get("metric") or {}
    run = scores["run"]
    summary = (
        (f"**{worth_line(metric, run.get('culture'))}**\n\n" if metric else "")
        + f"**{run.get('model') or 'model'}** · plan {run.get('plan')} · culture {run.get('culture')} · "
        f"{responses['rows']} responses, {responses['questions_scored']} questions scored "
        f"(share not usable: {_fmt(responses.get('non_ok_share'))})\n\n**KL {_fmt(metric.get('kl_mean'))}** "
        f"[95% CI {_fmt(metric.get('kl_ci_low'))}, {_fmt(metric.get('kl_ci_high'))}] (0 = the humans' answers; "
        f"lower is better) · JS {_fmt(metric.get('js_mean'))} (0 to 1, lower is better) · "
        f"match rate {_fmt(metric.get('match_rate'))} (higher is better) · distinct answers per question "
        f"{_fmt(metric.get('distinct_answers_mean'))}"
    )
    if metric.get("normalised_kl") is not None:
        summary += (f"\n\n**Normalised KL {_fmt(metric.get('normalised_kl'))}** "
                    f"[95% CI {_fmt(metric.get('normalised_kl_ci_low'))}, {_fmt(metric.get('normalised_kl_ci_high'))}]"
                    f" (1 = the human distribution itself, 0 = random answers, below 0 = worse than random; from the "
                    f"bias-corrected KL, so it does not depend on the number of participants) · uniform KL "
                    f"{_fmt(metric.get('uniform_kl_mean'))} (random answers)")
    if metric:
        summary += (f"\n\n**Yardsticks** (KL): a perfect simulator with these participants (P = "
                    f"{_fmt(metric.get('participants_mean'))}) scores {_fmt(metric.get('floor_kl_mean'))}; the survey's "
                    f"own noise is {_fmt(metric.get('survey_noise_kl_mean'))}; this model with unlimited participants "
                    f"(bias-corrected) {_fmt(metric.get('kl_bc_mean'))} [95% CI "
                    f"{_fmt(metric.get('kl_participant_ci_low'))}, {_fmt(metric.get('kl_participant_ci_high'))}]")
    notes = run_notes(run_dir, scores, rows, questions)
    if notes:
        summary += "\n\n" + notes
    result = JobResult(run_dir, scores, scores_table(scores), summary)
    result.figures = result_figures(scores, questions, rows, dataset_dir)
    result.files = [p for p in (run_dir / RESPONSES_FILE, run_dir / "scores.json") if p.exists()]
    return result
