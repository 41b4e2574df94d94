"""``culturesim invariance``: how far a model's answers move when only the presentation changes.

Why: a model that answers by position or label rather than by content looks aligned or
misaligned by accident of the option order (Dominguez-Olmedo et al., "Questioning the Survey
Responses of Large Language Models": once order and labels are randomised many models'
answers collapse towards uniform). This battery asks the same questions, with the same plan
and participants, under controlled changes of presentation, each an ordinary run folder made
by the runner's ``simulate`` (so generation, parsing and resuming are the runner's own):

- ``base-a``, ``base-b``: the options in source order, numbered (the unperturbed template),
  two independent runs (seeds ``seed`` and ``seed + 1``). The Jensen–Shannon distance between
  their distributions is the **sampling-noise yardstick**: what two runs differ by when nothing
  changed.
- ``order-1`` .. ``order-R`` (``order``): each participant sees its own seeded random order.
- ``labels-letters``, ``labels-text`` (``labels``): source order, options labelled ``A.``/``B.``
  or bare texts (``culturesim.simulator.labels``).
- ``reverse``: the source order backwards (a reversed scale).
- ``paraphrase`` (with ``--paraphrases DIR``): each participant gets an accepted rephrasing
  of the question (``culturesim dataset expand``); the options do not change.

Every run has its own seed (``seed + i`` for the i-th condition), so each is an independent
replicate and, if a perturbation changed nothing, its distance to a baseline would have the
same distribution as the distance between the two baselines.

What is reported (``invariance.json``, ``invariance.md``):

- **Movement** per perturbation: per question, the mean JS distance of the perturbed run to
  ``base-a`` and to ``base-b``; next to it the yardstick, the JS distance between ``base-a`` and
  ``base-b`` on the same questions; and the excess (movement minus yardstick, averaged over
  questions) with a 95% question-bootstrap interval (none below ``MIN_CI_QUESTIONS``
  questions). An excess whose interval lies above 0 is movement beyond sampling noise. Order, labels and paraphrase use the questions that are
  not numeric scales (a numeric scale keeps its order and numbers in every condition); reverse
  uses the ordered ones among them (agree/disagree, importance, frequency items), paraphrase
  those with at least one accepted variant. A question
  enters only where each run compared has at least one parsed answer. Distances between
  distributions of a few answers are biased upwards and the bias shrinks with the number of
  answers, so the parse rate of each run is reported beside it: a perturbation that halves
  the parse rate raises the distance by itself.
- **Position-bias index**, over the ``order`` runs (the only ones where position and content
  are separated): for each parsed single answer, the content predicts the displayed position
  ``i`` with probability ``p_q(order[i])``, where ``p_q`` is the question's distribution over
  source options pooled over the order runs (position effects average out over random
  orders). The index is the total-variation distance between the observed share of answers
  at each displayed position and the share so predicted (0: answers follow the content; 1:
  the position alone decides). Its reference is the same index for answers drawn from the
  content prediction itself (a seeded parametric bootstrap): its mean, 95th percentile and a
  p-value. The per-position table gives observed and predicted shares (first position first).
- **Bias-corrected alignment**: the permutation-averaged score, i.e. the answers of all order
  runs pooled per question and scored against the human distributions through the
  ``cultural_alignment`` metric (KL, JS, match rate, question-bootstrap CIs), next to the
  source-order baselines pooled and scored the same way, on the same questions: as many
  baseline runs as order runs (one with ``--orders 1``, both with two or more), so with up
  to two order runs both sides rest on the same number of runs.

All distances come from ``culturesim.metrics.cultural_alignment`` (one implementation).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from culturesim.metrics.cultural_alignment import compute_alignment
from culturesim.simulator.analysis.scoring import collect_answers, load_responses
from culturesim.simulator.questions import Question
from culturesim.simulator.runfolder import write_atomic

__all__ = [
    "INVARIANCE_VERSION",
    "PERTURBATIONS",
    "Condition",
    "LABEL_STYLES",
    "MIN_CI_QUESTIONS",
    "RESULT_FILE",
    "SUMMARY_FILE",
    "analyse",
    "plan_conditions",
    "position_bias",
    "summary_lines",
    "write_result",
]

log = logging.getLogger(__name__)

INVARIANCE_VERSION = "1.0"
PERTURBATIONS = ("order", "labels", "reverse", "paraphrase")
LABEL_STYLES = ("letters", "text")
RESULT_FILE = "invariance.json"
SUMMARY_FILE = "invariance.md"


@dataclass(frozen=True)
class Condition:
    """One run of the battery."""

    name: str
    perturbation: str
    """``baseline`` or one of ``PERTURBATIONS``."""
    order: str = "source"
    labels: str = "numbers"
    paraphrases: bool = False


def plan_conditions(perturbations: Sequence[str], orders: int = 2, label_styles: Sequence[str] = LABEL_STYLES
                    ) -> list[Condition]:
    """The runs for ``perturbations``, baselines first, in a fixed order (it fixes the seeds)."""
    unknown = [p for p in perturbations if p not in PERTURBATIONS]
    if unknown:
        raise ValueError(f"Unknown perturbation(s) {', '.join(unknown)}; choose from {', '.join(PERTURBATIONS)}")
    if not perturbations:
        raise ValueError(f"--perturbations is empty; choose from {', '.join(PERTURBATIONS)}")
    if "order" in perturbations and orders < 1:
        raise ValueError(f"--orders {orders} must be >= 1 with the order perturbation")
    bad = [s for s in label_styles if s not in LABEL_STYLES]
    if bad or not label_styles:
        raise ValueError(f"--label-styles {','.join(label_styles)}: choose from {', '.join(LABEL_STYLES)}")
    out = [Condition("base-a", "baseline"), Condition("base-b", "baseline")]
    if "order" in perturbations:
        out += [Condition(f"order-{j}", "order", order="plan") for j in range(1, orders + 1)]
    if "labels" in perturbations:
        out += [Condition(f"labels-{s}", "labels", labels=s) for s in label_styles]
    if "reverse" in perturbations:
        out.append(Condition("reverse", "reverse", order="reverse"))
    if "paraphrase" in perturbations:
        out.append(Condition("paraphrase", "paraphrase", paraphrases=True))
    return out


# --------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------


@dataclass
class _Run:
    name: str
    perturbation: str
    rows: list[dict[str, Any]]
    answers: dict[str, list[Any]]
    """question id -> parsed answers (source indices; a list for multiple choice)."""
    parse_rate: float


def _load(run_dir: Path, questions: list[Question], perturbation: str) -> _Run:
    rows = load_responses(run_dir)
    got = collect_answers(rows, questions)
    answers = {q.id: a for q, a in zip(got.questions, got.predictions)}
    ok = sum(1 for r in rows if r["status"] == "ok")
    return _Run(run_dir.name, perturbation, rows, answers, ok / len(rows) if rows else 0.0)


def _distribution(answers: list[Any], k: int) -> list[float]:
    counts = np.zeros(k)
    for a in answers:
        if isinstance(a, list):
            counts[a] += 1.0 / len(a)
        else:
            counts[a] += 1.0
    return (counts / counts.sum()).tolist()


def _js(a: _Run, b: _Run, qs: list[Question]) -> dict[str, float]:
    """Per question id, the JS distance between the distributions of runs ``a`` and ``b``
    (through the metric: ``a``'s answers against ``b``'s distribution as the reference)."""
    qs = [q for q in qs if q.id in a.answers and q.id in b.answers]
    if not qs:
        return {}
    result = compute_alignment(
        predictions=[a.answers[q.id] for q in qs],
        references=[_distribution(b.answers[q.id], q.num_options) for q in qs],
        question_ids=[q.id for q in qs], bootstrap_samples=0, participant_bootstrap_samples=0,
        return_per_question=True,
    )
    return {row["id"]: float(row["js"]) for row in result["per_question"]}


MIN_CI_QUESTIONS = 8
"""Fewer questions than this get no bootstrap interval: resampling 4 values says little."""


def _bootstrap_mean(values: np.ndarray, samples: int, rng: np.random.Generator) -> tuple[float | None, float | None]:
    if len(values) < MIN_CI_QUESTIONS or samples < 1:
        return None, None
    idx = rng.integers(0, len(values), size=(samples, len(values)))
    means = values[idx].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)


def _movement(runs: list[_Run], base_a: _Run, base_b: _Run, qs: list[Question], samples: int,
              rng: np.random.Generator) -> dict[str, Any]:
    """Movement of ``runs`` (one perturbation) against the two baselines, with the yardstick."""
    noise = _js(base_a, base_b, qs)
    per_run = [(_js(r, base_a, qs), _js(r, base_b, qs)) for r in runs]
    ids = [q.id for q in qs if q.id in noise and all(q.id in ja and q.id in jb for ja, jb in per_run)]
    if not ids:
        return {"questions": 0, "movement_mean": None, "noise_mean": None, "excess_mean": None,
                "excess_ci_low": None, "excess_ci_high": None, "ratio": None, "beyond_noise": None}
    move = np.array([np.mean([(ja[i] + jb[i]) / 2 for ja, jb in per_run]) for i in ids])
    yard = np.array([noise[i] for i in ids])
    excess = move - yard
    lo, hi = _bootstrap_mean(excess, samples, rng)
    return {
        "questions": len(ids),
        "movement_mean": float(move.mean()),
        "noise_mean": float(yard.mean()),
        "excess_mean": float(excess.mean()),
        "excess_ci_low": lo,
        "excess_ci_high": hi,
        "ratio": float(move.mean() / yard.mean()) if yard.mean() > 0 else None,
        "beyond_noise": None if lo is None else bool(lo > 0),
        "runs": [r.name for r in runs],
        "parse_rate": {r.name: r.parse_rate for r in runs},
        "per_question": [{"id": i, "movement": float(m), "noise": float(y)} for i, m, y in zip(ids, move, yard)],
    }


def _mean_or_none(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _tv(observed: np.ndarray, expected: np.ndarray) -> float:
    return float(0.5 * np.abs(observed - expected).sum())


def position_bias(runs: list[_Run], qs: list[Question], samples: int, rng: np.random.Generator) -> dict[str, Any] | None:
    """The position-bias index over runs whose participants saw random orders (module docstring)."""
    by_id = {q.id: q for q in qs}
    pooled: dict[str, list[Any]] = {}
    for r in runs:
        for qid, a in r.answers.items():
            if qid in by_id:
                pooled.setdefault(qid, []).extend(a)
    content = {qid: np.array(_distribution(a, by_id[qid].num_options)) for qid, a in pooled.items()}
    if not content:
        return None
    kmax = max(by_id[qid].num_options for qid in content)
    chosen, expected = [], []
    for r in runs:
        for row in r.rows:
            qid = row["question_id"]
            if row["status"] != "ok" or qid not in content or len(row["positions"]) != 1:
                continue
            order = row["option_order"]
            e = np.zeros(kmax)
            e[: len(order)] = content[qid][order]
            chosen.append(int(row["positions"][0]))
            expected.append(e)
    if not chosen:
        return None
    E = np.array(expected)
    n = len(chosen)
    observed = np.bincount(chosen, minlength=kmax) / n
    predicted = E.mean(axis=0)
    index = _tv(observed, predicted)
    # Reference: answers drawn from the content prediction itself, row by row.
    cdf = np.cumsum(E, axis=1)
    cdf[:, -1] = 1.0
    null = np.empty(samples)
    for b in range(samples):
        draws = (rng.random(n)[:, None] > cdf).sum(axis=1)
        null[b] = _tv(np.bincount(draws, minlength=kmax) / n, predicted)
    return {
        "answers": n,
        "questions": len(content),
        "index": index,
        "null_mean": float(null.mean()) if samples else None,
        "null_q95": float(np.quantile(null, 0.95)) if samples else None,
        "p_value": float((1 + (null >= index).sum()) / (samples + 1)) if samples else None,
        "positions": [{"position": i + 1, "observed_share": float(observed[i]), "predicted_share": float(predicted[i]),
                       "ratio": float(observed[i] / predicted[i]) if predicted[i] > 0 else None}
                      for i in range(kmax)],
        "runs": [r.name for r in runs],
    }


def _pooled_score(runs: list[_Run], qs: list[Question], samples: int, seed: int) -> dict[str, Any] | None:
    answers = [[a for r in runs for a in r.answers.get(q.id, [])] for q in qs]
    keep = [i for i, a in enumerate(answers) if a]
    if not keep:
        return None
    m = compute_alignment(
        predictions=[answers[i] for i in keep], references=[list(qs[i].human_distribution) for i in keep],
        ordinal=[qs[i].ordinal for i in keep], question_ids=[qs[i].id for i in keep],
        bootstrap_samples=samples, participant_bootstrap_samples=0, seed=seed,
    )
    keys = ("kl_mean", "kl_ci_low", "kl_ci_high", "js_mean", "js_ci_low", "js_ci_high", "match_rate",
            "match_rate_ci_low", "match_rate_ci_high")
    return {"runs": [r.name for r in runs], "questions": len(keep),
            "answers_per_question": float(np.mean([len(answers[i]) for i in keep])), **{k: m.get(k) for k in keys}}


def analyse(out: str | Path, conditions: Sequence[Condition], questions: Sequence[Question], bootstrap: int = 1000,
            seed: int = 0, model: str | None = None) -> dict[str, Any]:
    """Read the battery's run folders under ``out`` and compute every number (module docstring)."""
    out = Path(out)
    qs = list(questions)
    runs = {c.name: _load(out / c.name, qs, c.perturbation) for c in conditions}
    rng = np.random.default_rng(seed)
    shown = [q for q in qs if q.question_type != "scale"]
    ordered = [q for q in shown if q.ordinal]
    base_a, base_b = runs["base-a"], runs["base-b"]
    rephrased = {r["question_id"] for c in conditions if c.perturbation == "paraphrase" for r in runs[c.name].rows
                 if (r.get("presentation") or {}).get("variant")}
    eligible = {"order": shown, "labels": shown, "reverse": ordered,
                "paraphrase": [q for q in shown if q.id in rephrased]}
    movement: dict[str, Any] = {}
    for pert in PERTURBATIONS:
        members = [runs[c.name] for c in conditions if c.perturbation == pert]
        if not members:
            continue
        movement[pert] = _movement(members, base_a, base_b, eligible[pert], bootstrap, rng)
        if pert == "labels" and len(members) > 1:
            movement[pert]["by_style"] = {r.name: _movement([r], base_a, base_b, shown, bootstrap, rng) for r in members}
    orders = [runs[c.name] for c in conditions if c.perturbation == "order"]
    result: dict[str, Any] = {
        "format": "culturesim-invariance",
        "version": INVARIANCE_VERSION,
        "model": model,
        "questions": len(qs),
        "questions_not_scale": len(shown),
        "questions_ordered": len(ordered),
        "runs": {name: {"perturbation": r.perturbation, "rows": len(r.rows), "parse_rate": r.parse_rate}
                 for name, r in runs.items()},
        "sampling_noise": _mean_or_none(list(_js(base_a, base_b, qs).values())),
        "movement": movement,
        "position_bias": position_bias(orders, shown, bootstrap, rng) if orders else None,
        "bias_corrected_alignment": None,
        "source_order_alignment": None,
    }
    if orders:
        got = {q.id for q in qs if any(q.id in r.answers for r in orders)} & {
            q.id for q in qs if any(q.id in r.answers for r in (base_a, base_b))}
        same = [q for q in qs if q.id in got]
        result["bias_corrected_alignment"] = _pooled_score(orders, same, bootstrap, seed)
        # as many baseline runs as order runs (up to the two), so both scores rest on as many answers
        result["source_order_alignment"] = _pooled_score([base_a, base_b][: max(1, min(2, len(orders)))], same,
                                                         bootstrap, seed)
    return result


def _f(x: Any, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _ci(m: dict[str, Any]) -> str:
    if m["excess_ci_low"] is None:
        return f"no interval under {MIN_CI_QUESTIONS} questions"
    return f"95% CI {_f(m['excess_ci_low'])} to {_f(m['excess_ci_high'])}"


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The battery's headline numbers as plain lines (printed and written to invariance.md)."""
    lines = [f"invariance battery: {result.get('model') or 'model'}, {result['questions']} questions "
             f"({result['questions_not_scale']} not numeric scales, {result['questions_ordered']} of them ordered)"]
    for name, r in result["runs"].items():
        lines.append(f"  run {name}: {r['rows']} rows, parse rate {_f(r['parse_rate'])}")
    pb = result.get("position_bias")
    if pb:
        share = ", ".join(f"{p['position']}: {_f(p['observed_share'])} vs {_f(p['predicted_share'])}"
                          for p in pb["positions"])
        lines.append(f"position-bias index {_f(pb['index'])} (content-only reference: mean {_f(pb['null_mean'])}, "
                     f"95th percentile {_f(pb['null_q95'])}, p = {_f(pb['p_value'], 4)}; {pb['answers']} answers)")
        lines.append(f"  share of answers at each displayed position, observed vs content-predicted: {share}")
    for pert, m in result["movement"].items():
        lines.append(f"movement under {pert}: JS {_f(m['movement_mean'])} vs sampling noise {_f(m['noise_mean'])} "
                     f"(excess {_f(m['excess_mean'])}, {_ci(m)}; {m['questions']} questions)")
        for style, s in (m.get("by_style") or {}).items():
            lines.append(f"  {style}: JS {_f(s['movement_mean'])} vs noise {_f(s['noise_mean'])} "
                         f"(excess {_f(s['excess_mean'])}, {_ci(s)})")
    bc, so = result.get("bias_corrected_alignment"), result.get("source_order_alignment")
    if bc and so:
        lines.append(f"bias-corrected alignment (permutation-averaged, {bc['questions']} questions, "
                     f"{_f(bc['answers_per_question'], 1)} answers each): KL {_f(bc['kl_mean'])} "
                     f"[{_f(bc['kl_ci_low'])}, {_f(bc['kl_ci_high'])}], JS {_f(bc['js_mean'])} "
                     f"[{_f(bc['js_ci_low'])}, {_f(bc['js_ci_high'])}], match rate {_f(bc['match_rate'])}")
        lines.append(f"source-order alignment ({_f(so['answers_per_question'], 1)} answers each): KL {_f(so['kl_mean'])} "
                     f"[{_f(so['kl_ci_low'])}, {_f(so['kl_ci_high'])}], JS {_f(so['js_mean'])} "
                     f"[{_f(so['js_ci_low'])}, {_f(so['js_ci_high'])}], match rate {_f(so['match_rate'])}")
    return lines


def write_result(out: Path, result: dict[str, Any]) -> None:
    write_atomic(out / RESULT_FILE, json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    write_atomic(out / SUMMARY_FILE, "\n".join(summary_lines(result)) + "\n")
