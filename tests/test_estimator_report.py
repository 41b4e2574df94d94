"""The report's estimator comparison over four run folders of one model (sampling DEF, the
Cao baseline, logprob, verbalized), against JS computed by scipy."""

from __future__ import annotations

import re

import pytest
from scipy.spatial.distance import jensenshannon

from culturesim.simulator.analysis.estimators import reading_of
from culturesim.simulator.analysis.report import build_report, fmt
from culturesim.simulator.participants import PlanSettings
from culturesim.simulator.questions import load_questions
from culturesim.simulator.runfolder import write_config, write_questions, write_rows
from culturesim.simulator.runner import build_config

IDS = ["gss2022.cappun.en", "gss2022.natenvir.en", "gss2022.fefam.en"]
# Per question (source order): what each participant answered (sampling) or its distribution.
ANSWERS = {"gss2022.cappun.en": [0, 0, 1, 0], "gss2022.natenvir.en": [0, 1, 0, 2], "gss2022.fefam.en": [3, 2, 2, 1]}
CAO = {"gss2022.cappun.en": [0, 0, 0, 0], "gss2022.natenvir.en": [0, 0, 1, 0], "gss2022.fefam.en": [2, 2, 2, 3]}
LOGPROB = {"gss2022.cappun.en": [[0.7, 0.3], [0.5, 0.5]], "gss2022.natenvir.en": [[0.2, 0.5, 0.3], [0.4, 0.4, 0.2]],
           "gss2022.fefam.en": [[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]]}
VERBAL = {"gss2022.cappun.en": [[0.6, 0.4], None], "gss2022.natenvir.en": [None, None],  # unanswered: left out
          "gss2022.fefam.en": [[0.05, 0.15, 0.5, 0.3], [0.15, 0.25, 0.3, 0.3]]}


def write_run(path, questions, plan, estimator, per_question):
    cfg = build_config(questions, None, plan, 4 if estimator == "sampling" else 2, 0, PlanSettings(), 16, None,
                       estimator=estimator)
    cfg["model"] = "tiny-model"
    path.mkdir()
    write_questions(path, questions)
    rows = []
    for q in questions:
        for pid, value in enumerate(per_question[q.id]):
            row = {"key": f"{pid}:{q.id}", "participant_id": pid, "question_id": q.id, "raw_text": "Answer: 1",
                   "option_order": list(range(q.num_options)), "positions": [], "tokens": {"input": 1, "output": 1}}
            if estimator == "sampling":
                row.update(status="ok", option_indices=[value], positions=[value])
            else:
                row.update(status="ok" if value else "no_answer", option_indices=[], distribution=value)
            rows.append(row)
    write_rows(path, rows)
    write_config(path, cfg)
    return path


def mean_dist(values, k):
    values = [v for v in values if v]
    return [sum(v[i] for v in values) / len(values) for i in range(k)]


def counts(answers, k):
    return [answers.count(i) / len(answers) for i in range(k)]


@pytest.mark.slow
def test_four_readings_side_by_side_with_the_gap(tmp_path):
    qs = load_questions("US", ids=IDS)
    runs = [write_run(tmp_path / "sampling", qs, "all", "sampling", ANSWERS),
            write_run(tmp_path / "cao", qs, "cao", "sampling", CAO),
            write_run(tmp_path / "logprob", qs, "none", "logprob", LOGPROB),
            write_run(tmp_path / "verbalized", qs, "none", "verbalized", VERBAL)]
    report = build_report(runs, tmp_path / "report", bootstrap_samples=200)
    section = report["estimators"]
    assert section["common_questions"] == 2  # verbalized scored no natenvir
    by_reading = {r["reading"]: r for r in section["readings"]}
    assert {k: v["role"] for k, v in by_reading.items()} == {
        "sampling": "produced", "cao": "stated", "logprob": "produced", "verbalized": "stated"}

    model = {
        "sampling": {q.id: counts(ANSWERS[q.id], q.num_options) for q in qs},
        "cao": {q.id: counts(CAO[q.id], q.num_options) for q in qs},
        "logprob": {q.id: mean_dist(LOGPROB[q.id], q.num_options) for q in qs},
        "verbalized": {q.id: mean_dist(VERBAL[q.id], q.num_options) for q in qs if any(VERBAL[q.id])},
    }
    human = {q.id: q.human_distribution for q in qs}
    for reading, dists in model.items():
        row = by_reading[reading]
        js = [float(jensenshannon(d, human[qid], base=2)) for qid, d in dists.items()]
        assert row["n_questions"] == len(dists)
        assert row["js_mean"] == pytest.approx(sum(js) / len(js), abs=1e-9)
        assert row["js_mean_ci_low"] <= row["js_mean"] <= row["js_mean_ci_high"]
        common = [float(jensenshannon(dists[qid], human[qid], base=2)) for qid in ("gss2022.cappun.en", "gss2022.fefam.en")]
        assert row["js_mean_common"] == pytest.approx(sum(common) / 2, abs=1e-9)
        assert row["normalised_js"] is not None

    assert len(section["gaps"]) == 4  # two stated x two produced readings
    for stated in ("cao", "verbalized"):
        for produced in ("sampling", "logprob"):
            ids = [qid for qid in model[stated] if qid in model[produced]]
            js = [float(jensenshannon(model[stated][qid], model[produced][qid], base=2)) for qid in ids]
            g = next(g for g in section["gaps"] if reading_of_label(g["stated"]) == stated
                     and reading_of_label(g["produced"]) == produced)
            assert g["n_questions"] == len(ids)
            assert g["js_mean"] == pytest.approx(sum(js) / len(js), abs=1e-9)

    page = (tmp_path / "report" / "report.html").read_text()
    table = re.search(r'<table class="estimators">(.*?)</table>', page, re.S).group(1)
    for row in section["readings"]:
        assert f">{fmt(row['js_mean'])}</td>" in table
    assert '<table class="estimator-gaps">' in page
    assert report["ablation"] is None  # a logprob run with plan none is not the diversity ablation's `none`


def reading_of_label(label: str) -> str:
    """Run labels read "tiny-model · plan · US en" (sampling) or "tiny-model · estimator · plan · US en"."""
    parts = label.split(" · ")
    return {"all": "sampling", "cao": "cao"}.get(parts[1], parts[1])


def test_roles():
    assert reading_of({"plan": "all"}) == ("sampling", "produced")
    assert reading_of({"plan": "cao"}) == ("cao", "stated")
    assert reading_of({"plan": "none", "estimator": {"name": "logprob"}}) == ("logprob", "produced")
    assert reading_of({"plan": "cao", "estimator": {"name": "logprob"}}) == ("logprob (cao prompt)", "stated")
    assert reading_of({"plan": "prompt", "estimator": {"name": "verbalized"}}) == ("verbalized", "stated")
    assert reading_of({"plan": "ccsv"}) == ("ccsv", "other")
