"""Structure fidelity of a run folder in ``culturesim score``, the report and the Space: a run whose
participants are 120 real GSS 2022 respondents (drawn by weight, their own answers and sex x age as
persona) is scored against a dataset folder holding the US_respondents config; the numbers each
surface shows are the metric's on matrices built here straight from the respondents table."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from culturesim.metrics.cultural_alignment import structure_fidelity
from culturesim.simulator.analysis import structure_report
from culturesim.simulator.analysis.figures import layout_problems
from culturesim.simulator.analysis.report import build_report, fmt
from culturesim.simulator.analysis.scoring import score_run
from culturesim.simulator.cli import score as score_cli
from culturesim.simulator.questions import load_questions
from culturesim.simulator.runfolder import read_config, write_config
from culturesim.space.structure import structure_markdown, structure_panel

from runfolders import make_row, write_run
from structure_data import matrix, respondents_frame

P = 120
B = 40


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    base = tmp_path_factory.mktemp("structure")
    people = respondents_frame("US")
    (base / "dataset" / "respondents").mkdir(parents=True)
    people.to_parquet(base / "dataset" / "respondents" / "US_respondents.parquet")
    gss = [q for q in load_questions("US") if q.source == "GSS" and q.id in people.columns]
    answered = {q.id: people[q.id].notna().sum() for q in gss}
    questions = sorted(gss, key=lambda q: -answered[q.id])[:30]
    weights = people["weight"].to_numpy(dtype=float)
    draw = np.random.default_rng(11).choice(len(people), P, p=weights / weights.sum())
    answers = matrix(people, [q.id for q in questions])[draw]
    rows = []
    for pid, person in enumerate(draw):
        persona = {"location": None, "sex": people["sex"].iloc[person], "age_group": people["age_group"].iloc[person]}
        for j, q in enumerate(questions):
            a = int(answers[pid, j])
            row = make_row(pid, q, "ok", [a]) if a >= 0 else make_row(pid, q, "no_answer", [])
            rows.append({**row, "persona": persona})
    run = write_run(base / "run", questions, rows, P)
    config = read_config(run)
    config["question_selection"] = {"dataset_dir": str(base / "dataset")}
    write_config(run, config)
    result = score_run(run, bootstrap_samples=B, seed=0)
    ordinal = [j for j, q in enumerate(questions) if q.ordinal]
    human = matrix(people, [questions[j].id for j in ordinal])
    groups = [f"{s}/{a}" if isinstance(s, str) and isinstance(a, str) else None
              for s, a in zip(people["sex"], people["age_group"])]
    expected = structure_fidelity(answers[:, ordinal], human, [questions[j].num_options for j in ordinal],
                                  human_weights=weights, item_ids=[questions[j].id for j in ordinal],
                                  simulated_groups=[groups[i] for i in draw], human_groups=groups, replicates=B, seed=0)
    return {"run": run, "base": base, "result": result, "expected": expected, "questions": questions}


def test_score_run_holds_the_metric_on_the_runs_matrices(scored):
    s, expected = scored["result"]["structure"], scored["expected"]
    assert s["available"] and s["respondents_config"] == "US_respondents"
    assert s["n_pairs"] > 50 and s["participants"] == P
    for key, value in expected.items():
        assert s[key] == value, key
    assert s["group_spread_simulated"] is not None and s["group_spread_note"] is None
    on_disk = json.loads((scored["run"] / "scores.json").read_text())
    assert on_disk["structure"]["constraint_simulated"] == expected["constraint_simulated"]


def test_culturesim_score_prints_the_numbers(scored, capsys):
    assert score_cli.main(argparse.Namespace(run_dir=scored["run"], bootstrap_samples=B, seed=0)) == 0
    out = capsys.readouterr().out
    e = scored["expected"]
    assert (f"constraint (mean |r|): simulated {e['constraint_simulated']:.3f} [{e['constraint_simulated_ci_low']:.3f}, "
            f"{e['constraint_simulated_ci_high']:.3f}], humans {e['constraint_human']:.3f}, yardstick "
            f"{e['constraint_yardstick']:.3f} [{e['constraint_yardstick_ci_low']:.3f}, "
            f"{e['constraint_yardstick_ci_high']:.3f}]") in out
    assert f"distance to humans (RMSE): simulated {e['distance_simulated']:.3f}" in out
    assert f"PC1 share: simulated {e['pc1_share_simulated']:.3f}" in out


def test_report_section_table_and_figure(scored):
    out = scored["base"] / "report"
    build_report([scored["run"]], out, bootstrap_samples=B)
    page = (out / "report.html").read_text()
    report = json.loads((out / "report.json").read_text())
    (section,) = report["structure"]
    e = scored["expected"]
    assert section["constraint_simulated"] == e["constraint_simulated"]
    assert "<h2 id=structure>Structure fidelity</h2>" in page
    body = page.split("<h2 id=structure>", 1)[1].split("<h2", 1)[0]
    for key in ("constraint_simulated", "constraint_human", "constraint_yardstick_ci_low", "pc1_share_simulated",
                "distance_yardstick", "group_spread_human"):
        assert f"<td class=n>{fmt(e[key])}</td>" in body, key
    assert 'data-figure="structure_0"' in body
    assert (out / "figures" / "structure_0.png").stat().st_size > 10_000


def test_figure_keeps_the_layout_rules(scored):
    matrices = structure_report.run_structure(*_run_inputs(scored), replicates=0, return_matrices=True)
    fig = structure_report.structure_figure({**matrices, **scored["result"]["structure"]}, "a title")
    assert layout_problems(fig) == []


def _run_inputs(scored):
    from culturesim.simulator.analysis.scoring import load_config, load_responses, load_run_questions

    run = scored["run"]
    return load_responses(run), load_run_questions(run), load_config(run)


def test_space_panel_shows_the_numbers_and_draws(scored):
    text, fig = structure_panel(scored["run"], scored["result"])
    e = scored["expected"]
    assert f"| constraint (mean |r|) | {e['constraint_simulated']:.3f} |" in text
    assert f"{e['constraint_yardstick']:.3f}" in text
    assert fig is not None and len(fig.axes) >= 3


def test_not_available_says_why(scored, tmp_path):
    rows, questions, config = _run_inputs(scored)
    logprob = structure_report.run_structure(rows, questions, {**config, "estimator": {"name": "logprob"}})
    assert not logprob["available"] and "logprob" in logprob["reason"]
    (tmp_path / "respondents").mkdir()
    missing = structure_report.run_structure(rows, questions, config, dataset_dir=tmp_path)
    assert not missing["available"] and "no respondents config" in missing["reason"]
    assert "not available" in structure_markdown(missing)
    assert any("not available" in line for line in structure_report.summary_lines(missing))
