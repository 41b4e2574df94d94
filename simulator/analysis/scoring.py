"""``culturesim score RUN_DIR``: turn a run's rows into the metric's inputs and write scores.json.

Why: the maths lives once, in the ``cultural_alignment`` evaluate module; this module only
reads a run folder, builds per question the list of the participants' answers (rows with
status ``ok`` only, in participant order, as 0-based source option indices; a list of them for
multiple choice), counts what was left out and why, and records the run's metadata next to
the metric's output. The report and the Space call ``score_run`` and ``load_responses``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culturesim.simulator.questions import Question
from culturesim.simulator.runfolder import RESPONSES_FILE, Status, load_run_config, read_questions, read_rows
from culturesim.metrics.cultural_alignment import METRIC_VERSION, compute_alignment, refusal_channel
from culturesim.simulator.questions import load_questions
from culturesim.simulator.analysis import structure_report
from culturesim.metrics.cultural_alignment.structure import STRUCTURE_REPLICATES

__all__ = [
    "MIN_ANSWERS_PER_QUESTION",
    "MIN_QUESTIONS_PER_DIMENSION",
    "PARSE_RATE_WARNING",
    "SCORES_FILE",
    "RunAnswers",
    "collect_answers",
    "collect_distributions",
    "load_config",
    "load_responses",
    "load_run_questions",
    "run_estimator",
    "score_run",
    "summary_lines",
    "support_warnings",
    "worth_line",
]

log = logging.getLogger(__name__)

SCORES_FILE = "scores.json"

# What the numbers rest on: below these a number is flagged (report, `culturesim score`).
PARSE_RATE_WARNING = 0.5
"""Warn when fewer than this share of a run's responses parsed to an answer."""
MIN_ANSWERS_PER_QUESTION = 5
"""A question's model distribution resting on fewer parsed answers than this is flagged."""
MIN_QUESTIONS_PER_DIMENSION = 3
"""A per-dimension mean resting on fewer questions than this is flagged (one question: no interval)."""


def load_config(run_dir: str | Path) -> dict[str, Any]:
    """The run's config.json; a missing or damaged one is an error naming the file and the fix."""
    return load_run_config(run_dir)


def check_rows(rows: list[dict[str, Any]], where: str | Path) -> None:
    """Refuse rows the scores cannot rest on: two rows for one participant and question (two
    writers), or an ``ok`` row without its option indices. ValueError names the rows and the fix."""
    seen: set[tuple[int, str]] = set()
    dupes: list[tuple[int, str]] = []
    for row in rows:
        key = (row["participant_id"], row["question_id"])
        if key in seen:
            dupes.append(key)
        seen.add(key)
        if row["status"] == Status.OK:
            indices = row.get("option_indices")
            if not isinstance(indices, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
                raise ValueError(f"{where}: the ok row for participant {key[0]}, question "
                                 f"{key[1]!r} has option_indices {indices!r}, not a list of whole numbers; restore the "
                                 "file or run the simulation again")
    if dupes:
        examples = ", ".join(f"participant {p} x {q}" for p, q in dupes[:3])
        raise ValueError(f"{where} holds {len(dupes)} duplicate row(s) (e.g. {examples}): two "
                         "processes wrote this run, and counting both would weight those answers twice. Run the "
                         "simulation again into a new --out (runs are locked against a second writer now)")


def load_responses(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every complete row of ``responses.jsonl`` (a truncated last line of a running or
    killed run is skipped, not repaired)."""
    return read_rows(Path(run_dir) / RESPONSES_FILE)


def load_run_questions(run_dir: str | Path) -> list[Question]:
    """The questions the run asked, in order: its ``questions.jsonl`` snapshot, else the
    dataset the config names."""
    run_dir = Path(run_dir)
    config = load_config(run_dir)
    by_id = read_questions(run_dir, Question.from_record)
    if by_id is None:

        sel = config.get("question_selection") or {}
        qs = load_questions(culture=config["culture"], language=sel.get("language"), dataset_dir=sel.get("dataset_dir"),
                            ids=config["question_ids"])
        by_id = {q.id: q for q in qs}
    missing = [qid for qid in config["question_ids"] if qid not in by_id]
    if missing:
        raise ValueError(f"{run_dir}: {len(missing)} question(s) of the run are not in the question source, e.g. {missing[:3]}")
    return [by_id[qid] for qid in config["question_ids"]]


@dataclass
class RunAnswers:
    """The metric's inputs for one run, and what was left out."""

    questions: list[Question]
    """Questions with at least one ok answer, in run order."""
    predictions: list[list[Any]]
    """Per question, the ok answers in participant order (int, or list[int] for multiple choice)."""
    participants: list[list[int]]
    """Per question, the participant id of each answer."""
    unanswered: list[str] = field(default_factory=list)
    """Question ids without a single ok answer (left out of the scores)."""
    status_counts: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    expected_rows: int = 0
    question_status: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per question id (every question of the run), its rows' status counts."""


def collect_answers(rows: list[dict[str, Any]], questions: list[Question]) -> RunAnswers:
    """Group ok rows by question (participant order); count statuses. Rows are checked first
    (``check_rows``): duplicates and malformed ok rows are refused, not counted."""
    check_rows(rows, "the responses")
    by_question: dict[str, list[dict[str, Any]]] = {q.id: [] for q in questions}
    counts: Counter[str] = Counter()
    for row in rows:
        counts[row["status"]] += 1
        if row["status"] == Status.OK and row["question_id"] in by_question:
            by_question[row["question_id"]].append(row)
    kept, predictions, who, unanswered = [], [], [], []
    per_question_status: dict[str, Counter[str]] = {q.id: Counter() for q in questions}
    for row in rows:
        if row["question_id"] in per_question_status:
            per_question_status[row["question_id"]][row["status"]] += 1
    for q in questions:
        ok = sorted(by_question[q.id], key=lambda r: r["participant_id"])
        answers = []
        for r in ok:
            indices = [int(i) for i in r["option_indices"]]
            bad = [i for i in indices if not 0 <= i < q.num_options]
            if bad or not indices:
                raise ValueError(f"Row {r.get('key')!r}: option indices {indices} do not fit question {q.id!r} ({q.num_options} options)")
            answers.append(indices if q.question_type == "multiple_choice" else indices[0])
        if not answers:
            unanswered.append(q.id)
            continue
        kept.append(q)
        predictions.append(answers)
        who.append([int(r["participant_id"]) for r in ok])
    return RunAnswers(kept, predictions, who, unanswered, dict(counts), len(rows),
                      question_status={k: dict(v) for k, v in per_question_status.items()})


def _dropped_reason(status_counts: dict[str, int]) -> str:
    """Why a question has no score: its responses by status ("no parsed answer: 6 no_answer, 2 refusal")."""
    if not status_counts:
        return "no response rows"
    parts = ", ".join(f"{n} {s}" for s, n in sorted(status_counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"no parsed answer ({parts})"


def support_warnings(responses: dict[str, Any], metric: dict[str, Any] | None, dropped: bool = True) -> list[str]:
    """Plain-language warnings where a number rests on too few answers or questions (the
    thresholds are the module constants, stated in every warning). ``dropped``: include the
    questions left out for lack of a parsed answer (off where they are listed already)."""
    out = []
    rate = responses.get("parse_rate")
    if rate is not None and rate < PARSE_RATE_WARNING:
        out.append(f"Only {rate:.0%} of responses parsed to an answer (below {PARSE_RATE_WARNING:.0%}): the model "
                   "distributions rest on few answers each, and on the responses the parser could read.")
    if not responses.get("complete", True):
        out.append(f"The run is incomplete: {responses.get('rows')} of {responses.get('expected_rows')} rows present.")
    left_out = responses.get("questions_dropped") or []
    if left_out and dropped:
        out.append(f"{len(left_out)} question(s) had no parsed answer and are left out of every score: "
                   + ", ".join(d["id"] for d in left_out) + ".")
    # A logprob or verbalized run gives each participant a whole distribution, not one draw: few of them
    # is no sampling noise to warn about (the metric scores their mean as a probability vector).
    sampled = (metric or {}).get("model_input") != "probabilities"
    few = sorted(q for q, n in (responses.get("answers_per_question") or {}).items()
                 if sampled and n < MIN_ANSWERS_PER_QUESTION)
    if few:
        out.append(f"{len(few)} scored question(s) rest on fewer than {MIN_ANSWERS_PER_QUESTION} parsed answers: "
                   + ", ".join(few) + ".")
    if (metric or {}).get("n_few_participants"):
        out.append(f"{metric['n_few_participants']} question(s) have at most 2 parsed answers: no bias-corrected value, "
                   "participant interval, normalised score or worth N for them or for means over them, and the "
                   "normalised scores leave them out (with one or two participants a model that always gives the "
                   "human modal answer would score better than perfect).")
    thin = sorted(d for d, st in ((metric or {}).get("per_dimension") or {}).items()
                  if (st.get("n_questions") or 0) < MIN_QUESTIONS_PER_DIMENSION)
    if thin:
        out.append(f"{len(thin)} value dimension(s) rest on fewer than {MIN_QUESTIONS_PER_DIMENSION} questions "
                   f"({', '.join(thin)}); one question gives no interval.")
    return out


def collect_distributions(rows: list[dict[str, Any]], questions: list[Question]) -> RunAnswers:
    """For ``logprob`` and ``verbalized`` runs: per question, the mean of the ok rows'
    distributions (source order) over participants, i.e. over their option orders and
    personas; ``predictions`` then holds one probability vector per question."""
    sums: dict[str, list[float]] = {}
    who: dict[str, list[int]] = {q.id: [] for q in questions}
    sizes = {q.id: q.num_options for q in questions}
    counts: Counter[str] = Counter()
    for row in sorted(rows, key=lambda r: r["participant_id"]):
        counts[row["status"]] += 1
        qid = row["question_id"]
        if row["status"] != Status.OK or qid not in sizes:
            continue
        dist = row.get("distribution")
        if not isinstance(dist, list) or len(dist) != sizes[qid] or any(not isinstance(x, (int, float)) or x < 0 for x in dist):
            raise ValueError(f"Row {row.get('key')!r}: distribution {dist!r} does not fit question {qid!r} ({sizes[qid]} options)")
        total = float(sum(dist))
        if total <= 0:
            raise ValueError(f"Row {row.get('key')!r}: distribution sums to {total}, not 1")
        acc = sums.setdefault(qid, [0.0] * sizes[qid])
        for i, x in enumerate(dist):
            acc[i] += x / total
        who[qid].append(int(row["participant_id"]))
    kept, predictions, participants, unanswered = [], [], [], []
    for q in questions:
        if not who[q.id]:
            unanswered.append(q.id)
            continue
        mean = [x / len(who[q.id]) for x in sums[q.id]]
        norm = sum(mean)
        kept.append(q)
        predictions.append([x / norm for x in mean])
        participants.append(who[q.id])
    return RunAnswers(kept, predictions, participants, unanswered, dict(counts), len(rows))


def _n_effective(q: Question) -> float | None:
    """Respondents behind the question's human distribution over the weights' design effect
    (dataset 3.0 ``human_n_effective``); the unweighted ``human_n`` where the dataset gives no
    design effect (then the survey's noise is understated by that factor)."""
    n_eff = q.human_n_effective if q.human_n_effective is not None else q.human_n
    return float(n_eff) if n_eff and n_eff >= 1 else None


def run_estimator(config: dict[str, Any]) -> str:
    """``sampling``, ``logprob`` or ``verbalized``: how a run read the model (config.json)."""
    return str((config.get("estimator") or {}).get("name") or "sampling")


def score_run(
    run_dir: str | Path,
    bootstrap_samples: int = 1000,
    seed: int = 0,
    return_per_question: bool = True,
    write: bool = True,
    questions: list[Question] | None = None,
) -> dict[str, Any]:
    """Score a run folder with the ``cultural_alignment`` metric; write ``scores.json``.

    Returns ``{"run": metadata, "responses": status counts and shares, "metric": the
    metric's output}``. ``questions`` overrides the run's question snapshot (e.g. a rebuilt
    dataset with corrected human distributions; ids must match).
    """

    run_dir = Path(run_dir)
    config = load_config(run_dir)
    rows = load_responses(run_dir)
    check_rows(rows, run_dir / RESPONSES_FILE)
    qs = questions if questions is not None else load_run_questions(run_dir)
    estimator = run_estimator(config)
    answers = collect_answers(rows, qs) if estimator == "sampling" else collect_distributions(rows, qs)
    expected = len(config.get("participant_ids") or []) * len(config["question_ids"])
    answers.expected_rows = expected
    total = max(answers.rows, 1)
    shares = {s: answers.status_counts.get(s, 0) / total
              for s in sorted({s.value for s in Status} | set(answers.status_counts))}
    responses = {
        "rows": answers.rows,
        "expected_rows": expected,
        "complete": answers.rows == expected,
        "status_counts": {s: answers.status_counts.get(s, 0) for s in shares},
        "status_shares": shares,
        "non_ok_share": 1.0 - shares.get("ok", 0.0) if answers.rows else None,
        "parse_rate": shares.get("ok", 0.0) if answers.rows else None,
        "questions_scored": len(answers.questions),
        "questions_unanswered": answers.unanswered,
        # participants, not predictions: a probability-vector run holds one mean vector per question
        "answers_per_question": {q.id: len(ids) for q, ids in zip(answers.questions, answers.participants)},
        "questions_dropped": [{"id": qid, "reason": _dropped_reason(answers.question_status.get(qid, {}))}
                              for qid in answers.unanswered],
        "thresholds": {"parse_rate_warning": PARSE_RATE_WARNING, "min_answers_per_question": MIN_ANSWERS_PER_QUESTION,
                       "min_questions_per_dimension": MIN_QUESTIONS_PER_DIMENSION},
        # the refusal channel over every question of the run, also those without a valid answer
        # (the metric's own "refusals" block covers the scored questions only)
        "refusals": refusal_channel(
            [answers.question_status.get(q.id, {}) for q in qs],
            [getattr(q, "human_nonsubstantive_share", None) for q in qs],
            question_ids=[q.id for q in qs], bootstrap_samples=bootstrap_samples, seed=seed,
        ) if qs else None,
    }
    if not answers.rows == expected:
        log.warning("%s: %d of %d rows present; scoring what is there", run_dir, answers.rows, expected)
    if answers.questions:
        model_side = {"predictions" if estimator == "sampling" else "probabilities": answers.predictions}
        metric = compute_alignment(
            **model_side,
            references=[list(q.human_distribution) for q in answers.questions],
            ordinal=[q.ordinal for q in answers.questions],
            value_dimensions=[list(q.value_dimensions) for q in answers.questions],
            demographics=[list(q.demographics) for q in answers.questions],
            question_ids=[q.id for q in answers.questions],
            response_statuses=[answers.question_status.get(q.id, {}) for q in answers.questions],
            human_nonsubstantive_share=[getattr(q, "human_nonsubstantive_share", None) for q in answers.questions],
            battery=[q.battery for q in answers.questions],
            human_n_effective=[_n_effective(q) for q in answers.questions],
            bootstrap_samples=bootstrap_samples,
            seed=seed,
            return_per_question=return_per_question,
        )
    else:
        metric = None
        log.warning("%s: no question has an ok answer; nothing to score", run_dir)
    result = {
        "run": {
            "dir": str(run_dir.resolve()),
            "model": config.get("model"),
            "backend": (config.get("backend") or {}).get("backend"),
            "plan": config.get("plan"),
            "estimator": estimator,
            "culture": config.get("culture"),
            "languages": config.get("languages"),
            "participants": config.get("participants"),
            "seed": config.get("seed"),
            "versions": {**{k: v for k, v in config.items() if k.endswith("_version")}, "metric_version": METRIC_VERSION},
            "created_at": config.get("created_at"),
        },
        "responses": responses,
        "metric": metric,
        # structure fidelity (correlations between questions against the respondents config): structure_report
        "structure": structure_report.run_structure(
            rows, qs, config, replicates=min(bootstrap_samples, STRUCTURE_REPLICATES), seed=seed),
    }
    if write:
        tmp = run_dir / (SCORES_FILE + ".tmp")
        tmp.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        tmp.replace(run_dir / SCORES_FILE)
    return result


def _num(value: Any) -> str:
    """Three decimals, as in the report: what a reader compares, not float noise."""
    return "n/a" if value is None else f"{value:.3f}"


def _interval(m: dict[str, Any], stat: str) -> str:
    lo, hi = m.get(f"{stat}_ci_low"), m.get(f"{stat}_ci_high")
    return f" [{_num(lo)}, {_num(hi)}]" if lo is not None and hi is not None else ""


def _count(n: float | None) -> str:
    """A respondent count as people read it: 3, 12, 1,200."""
    if n is None:
        return "n/a"
    return f"{n:.1f}" if n < 10 else f"{n:,.0f}"


#: Who a culture's respondents are, for the worth-N headline ("a random sample of 3 Americans").
PEOPLE = {"US": "Americans", "CN": "people in China", "JP": "people in Japan", "EG": "people in Egypt"}


def worth_line(metric: dict[str, Any], culture: str | None = None) -> str:
    """The headline: worth N respondents, with its interval ("as close to US opinion as a random
    sample of 3 Americans [95% interval 2 to 5]"), ∞ within the survey's own noise, or why there
    is none."""
    who = f"{culture} opinion" if culture else "the human answers"
    people = PEOPLE.get(str(culture), "real respondents")
    if metric.get("worth_n_infinite"):
        return (f"Worth N respondents: ∞, as close to {who} as the survey itself (within its own sampling noise: "
                f"bias-corrected KL {_num(metric.get('kl_bc_mean'))} <= survey noise "
                f"{_num(metric.get('survey_noise_kl_mean'))})")
    n = metric.get("worth_n")
    if n is None:
        return ("Worth N respondents: n/a (needs 3 or more parsed answers per question, or probability vectors)")
    lo, hi = metric.get("worth_n_ci_low"), metric.get("worth_n_ci_high")
    interval = f" [95% interval {_count(lo)} to {'∞' if hi is None else _count(hi)}]"
    return f"Worth N respondents: {_count(n)}, as close to {who} as a random sample of {_count(n)} {people}{interval}"


def summary_lines(result: dict[str, Any], scores_path: str | Path | None = None) -> list[str]:
    """The short summary ``culturesim score`` prints: what the scores rest on, the headline
    numbers rounded, and the warnings (``support_warnings``)."""
    r, m = result["responses"], result["metric"] or {}
    rate = r.get("parse_rate")
    n_asked = r["questions_scored"] + len(r["questions_unanswered"])
    per_q = list((r.get("answers_per_question") or {}).values())
    lines = [f"{r['status_counts'].get('ok', 0)} of {r['rows']} responses parsed to an answer"
             f" ({'n/a' if rate is None else f'{rate:.0%}'}); {r['questions_scored']} of {n_asked} questions scored"
             + (f", {sum(per_q) / len(per_q):.1f} parsed answers per scored question ({min(per_q)} to {max(per_q)})"
                if per_q else "")]
    missed = {k: v for k, v in r["status_counts"].items() if k != "ok" and v}
    if missed:
        lines.append("  not parsed: " + ", ".join(f"{k} {v}" for k, v in sorted(missed.items(), key=lambda kv: -kv[1])))
    for d in r.get("questions_dropped") or []:
        lines.append(f"  dropped: {d['id']} ({d['reason']})")
    if m:
        lines.insert(0, worth_line(m, result["run"].get("culture")))
        lines.append(f"  KL {_num(m.get('kl_mean'))}{_interval(m, 'kl')}, JS {_num(m.get('js_mean'))}{_interval(m, 'js')}, "
                     f"Wasserstein {_num(m.get('wasserstein_mean'))}, match rate {_num(m.get('match_rate'))}"
                     f"{_interval(m, 'match_rate')}")
        lines.append("  (KL, JS, Wasserstein: lower = closer to the human answers; match rate: higher = better; "
                     "[95% bootstrap interval over questions])")
        P = m.get("participants_mean")
        lines.append(f"  yardsticks: a perfect simulator with these participants (P = {'n/a' if P is None else f'{P:.1f}'}"
                     f" per question) scores KL {_num(m.get('floor_kl_mean'))}, JS {_num(m.get('floor_js_mean'))}; the "
                     f"survey's own noise is KL {_num(m.get('survey_noise_kl_mean'))}, JS "
                     f"{_num(m.get('survey_noise_js_mean'))}; bias-corrected KL "
                     f"(unlimited participants) {_num(m.get('kl_bc_mean'))} [{_num(m.get('kl_participant_ci_low'))}, "
                     f"{_num(m.get('kl_participant_ci_high'))}]")
    lines += structure_report.summary_lines(result.get("structure"))
    lines += [f"warning: {w}" for w in support_warnings(r, result["metric"], dropped=False)]
    if scores_path is not None:
        lines.append(f"scores: {scores_path}")
    return lines
