"""Scoring a run folder: ok rows become the metric's answers; numbers checked with scipy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy

from culturesim.simulator.cli import main as cli_main
from runfolders import make_row, write_run
from culturesim.simulator.questions import Question, load_questions
from culturesim.simulator.runfolder import RESPONSES_FILE
from culturesim.simulator.runner import simulate
from culturesim.simulator.analysis.scoring import SCORES_FILE, collect_answers, load_responses, load_run_questions, score_run

EPS = 1e-3  # the metric's default additive smoothing for KL


def _smoothed_kl(p: np.ndarray, q: np.ndarray) -> float:
    k = len(p)
    return float(entropy((p + EPS) / (1 + k * EPS), (q + EPS) / (1 + k * EPS)))


def test_scores_match_scipy_on_a_written_run(tmp_path):
    us = load_questions("US", limit=3)
    a, b, c = us
    mc = Question(id="x.children.en", culture="US", language="en", question="Which qualities matter for children?",
                  options=("Tolerance", "Thrift", "Obedience"), option_codes=(1, 2, 3), question_type="multiple_choice",
                  ordinal=False, human_distribution=(0.5, 0.3, 0.2), human_n=100)
    rows = [
        make_row(0, a, "ok", [0]), make_row(1, a, "ok", [1]), make_row(2, a, "ok", [1]), make_row(3, a, "no_answer", []),
        make_row(0, b, "ok", [len(b.options) - 1]), make_row(1, b, "refusal", []), make_row(2, b, "ok", [0]), make_row(3, b, "ok", [0]),
        make_row(0, c, "no_answer", []), make_row(1, c, "invalid_option", []), make_row(2, c, "error", []), make_row(3, c, "no_answer", []),
        make_row(0, mc, "ok", [0, 2]), make_row(1, mc, "ok", [1]), make_row(2, mc, "ok", [0]), make_row(3, mc, "multiple_for_single", []),
    ]
    run = write_run(tmp_path / "run", [a, b, c, mc], rows, participants=4)
    result = score_run(run, bootstrap_samples=0)
    assert json.loads((run / SCORES_FILE).read_text()) == json.loads(json.dumps(result))

    r = result["responses"]
    assert r["rows"] == r["expected_rows"] == 16 and r["complete"]
    assert r["status_counts"] == {"ok": 9, "no_answer": 3, "refusal": 1, "invalid_option": 1, "error": 1,
                                  "multiple_for_single": 1, "number_text_disagree": 0, "empty": 0}
    assert r["non_ok_share"] == pytest.approx(7 / 16)
    assert r["questions_unanswered"] == [c.id] and r["questions_scored"] == 3

    # Model distributions counted by hand; metric values recomputed with scipy.
    def dist(counts):
        v = np.asarray(counts, dtype=float)
        return v / v.sum()

    model = {
        a.id: dist([1, 2] + [0] * (len(a.options) - 2)),
        b.id: dist([2] + [0] * (len(b.options) - 2) + [1]),
        mc.id: dist([0.5 + 1, 1, 0.5]),  # a two-option answer counts half for each
    }
    metric = result["metric"]
    assert metric["n_questions"] == 3
    per_q = {p["id"]: p for p in metric["per_question"]}
    kls, jss = [], []
    for q in (a, b, mc):
        human = np.asarray(q.human_distribution)
        assert per_q[q.id]["model_distribution"] == pytest.approx(model[q.id].tolist())
        kls.append(_smoothed_kl(model[q.id], human))
        jss.append(float(jensenshannon(model[q.id], human, base=2)))
        assert per_q[q.id]["kl"] == pytest.approx(kls[-1], rel=1e-9)
        assert per_q[q.id]["js"] == pytest.approx(jss[-1], rel=1e-9)
    assert metric["kl_mean"] == pytest.approx(np.mean(kls), rel=1e-9)
    assert metric["js_mean"] == pytest.approx(np.mean(jss), rel=1e-9)
    assert result["run"]["model"] == "hand-written" and result["run"]["versions"]["prompt_version"] == "1.0"
    assert "metric_version" in result["run"]["versions"]


def test_answers_are_in_participant_order_and_checked(tmp_path):
    q = load_questions("US", limit=1)[0]
    rows = [make_row(2, q, "ok", [1]), make_row(0, q, "ok", [0]), make_row(1, q, "ok", [1])]
    answers = collect_answers(rows, [q])
    assert answers.predictions == [[0, 1, 1]] and answers.participants == [[0, 1, 2]]
    with pytest.raises(ValueError, match="do not fit question"):
        collect_answers([{**make_row(0, q, "ok", [0]), "option_indices": [len(q.options)]}], [q])


def test_truncated_tail_is_skipped_without_touching_the_file(tmp_path):
    q = load_questions("US", limit=1)[0]
    run = write_run(tmp_path / "run", [q], [make_row(0, q, "ok", [0])], participants=2)
    with open(run / RESPONSES_FILE, "a") as fh:
        fh.write('{"participant_id": 1, "question_')
    size = (run / RESPONSES_FILE).stat().st_size
    assert len(load_responses(run)) == 1
    assert (run / RESPONSES_FILE).stat().st_size == size
    result = score_run(run, bootstrap_samples=0, write=False)
    assert result["responses"]["complete"] is False and result["responses"]["expected_rows"] == 2
    assert [x.id for x in load_run_questions(run)] == [q.id]


@pytest.mark.slow
def test_score_a_real_run_from_the_command_line(tmp_path, capsys, embedded_backend):
    backend = embedded_backend(seed=4, batch_size=16)  # get_backend("transformers", batch_size=16, seed=4), shared weights
    try:
        simulate(tmp_path / "run", load_questions("US", limit=3), backend, plan="none", participants=3, seed=4,
                 max_new_tokens=24, progress=False)
    finally:
        backend.close()
    assert cli_main(["score", str(tmp_path / "run"), "--bootstrap-samples", "20"]) == 0
    scores = json.loads((tmp_path / "run" / SCORES_FILE).read_text())
    r = scores["responses"]
    assert r["rows"] == 9 and sum(r["status_counts"].values()) == 9
    assert r["questions_scored"] + len(r["questions_unanswered"]) == 3
    if r["questions_scored"]:
        assert scores["metric"]["n_questions"] == r["questions_scored"]
        assert 0.0 <= scores["metric"]["js_mean"] <= 1.0
    else:
        assert scores["metric"] is None
    assert scores["run"]["plan"] == "none" and scores["run"]["versions"]["parser_version"]
    assert "scores.json" in capsys.readouterr().out


def test_dataset_3_columns_reach_the_metric(tmp_path):
    """A dataset 3.0 record's battery, human_n_effective and design_effect are read into the
    Question (and kept through the run's questions.jsonl snapshot); scoring passes the battery
    (question bootstrap by battery) and n_eff (the survey's own noise) to the metric: the same
    numbers as compute_alignment given them directly."""
    from culturesim.metrics.cultural_alignment import compute_alignment

    base = {"culture": "US", "language": "en", "question": "Q?", "options": ["a", "b", "c"], "option_codes": [1, 2, 3],
            "question_type": "single_choice", "ordinal": True, "human_n": 1000}
    records = [{**base, "id": f"gss2022.x{i}.en", "human_distribution": d, "battery": b, "human_n_effective": n,
                "design_effect": 1000 / n if n else None}
               for i, (d, b, n) in enumerate([([0.2, 0.3, 0.5], "gss.x", 400.0), ([0.6, 0.3, 0.1], "gss.x", 410.0),
                                              ([0.3, 0.4, 0.3], None, None)])]
    questions = [Question.from_record(r) for r in records]
    assert (questions[0].battery, questions[0].human_n_effective, questions[0].design_effect) == ("gss.x", 400.0, 2.5)
    assert questions[2].battery is None and questions[2].human_n_effective is None
    rows = [make_row(p, q, "ok", [p % 3]) for q in questions for p in range(6)]
    run = write_run(tmp_path / "run", questions, rows, participants=6)
    assert load_run_questions(run) == questions and [q.battery for q in load_run_questions(run)] == ["gss.x", "gss.x", None]
    metric = score_run(run, bootstrap_samples=200, write=False)["metric"]
    direct = compute_alignment(predictions=[[p % 3 for p in range(6)]] * 3, references=[r["human_distribution"] for r in records],
                               ordinal=[True] * 3, value_dimensions=[[]] * 3, demographics=[[]] * 3,
                               question_ids=[q.id for q in questions], battery=["gss.x", "gss.x", None],
                               human_n_effective=[400.0, 410.0, 1000.0],  # human_n where no n_eff is given
                               bootstrap_samples=200, seed=0)
    for key in ("survey_noise_kl_mean", "kl_ci_low", "kl_ci_high", "kl_participant_ci_low", "worth_n"):
        assert metric[key] == pytest.approx(direct[key]), key
    assert metric["survey_noise_kl_mean"] is not None
