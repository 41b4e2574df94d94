"""The results table: a scored run becomes one row; a duplicate or a version mismatch is refused.

Reference run folders (``culturesim.simulator.experiments.references``) are real run folders scored by
the real metric and take no model, so the refusals are checked fast; one real SmolLM2 run (slow)
goes through ``culturesim results add`` and ``show`` on the command line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from culturesim.metrics.cultural_alignment import METRIC_VERSION
from culturesim.simulator.analysis.results_table import KEY, add_run, interval_of, read_table
from culturesim.simulator.cli import main as cli
from culturesim.simulator.experiments.references import write_reference
from culturesim.simulator.questions import load_questions


@pytest.fixture(scope="module")
def questions():
    return load_questions(culture="US", language="en", limit=8)


def test_references_score_where_they_should(tmp_path: Path, questions) -> None:
    """Uniform answers score 0 on the normalised scale by construction; a sample of real people
    near 1; the always-modal answer matches every human argmax."""
    table = tmp_path / "t.jsonl"
    rows = {name: add_run(write_reference(tmp_path / name, questions, name, participants=10), table,
                          bootstrap_samples=50)
            for name in ("uniform", "modal", "humans-50")}
    assert abs(rows["uniform"]["scores"]["normalised_js"]) < 1e-9
    assert rows["modal"]["scores"]["match_rate"] == 1.0
    assert rows["humans-50"]["scores"]["normalised_js"] > rows["uniform"]["scores"]["normalised_js"]
    assert rows["humans-50"]["kind"] == "reference" and "multinomial" in rows["humans-50"]["reference"]
    lo, hi = interval_of(rows["humans-50"]["scores"], "js_mean")
    assert lo <= rows["humans-50"]["scores"]["js_mean"] <= hi
    assert [r["model"] for r in read_table(table)] == ["reference:uniform", "reference:modal", "reference:humans-50"]


def test_duplicate_and_version_mismatch_are_refused(tmp_path: Path, questions, capsys) -> None:
    table = tmp_path / "t.jsonl"
    run = write_reference(tmp_path / "modal", questions, "modal", participants=5)
    assert cli(["results", "add", str(run), "--table", str(table), "--bootstrap-samples", "20"]) == 0
    before = table.read_text(encoding="utf-8")
    assert cli(["results", "add", str(run), "--table", str(table), "--bootstrap-samples", "20"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already holds a row" in err and "reference:modal" in err
    assert table.read_text(encoding="utf-8") == before
    # the table's rows are of another metric version: a row of this version would not compare
    row = json.loads(before)
    row["metric_version"] = "0.0.1"
    table.write_text(json.dumps(row) + "\n", encoding="utf-8")
    other = write_reference(tmp_path / "uniform", questions, "uniform")
    assert cli(["results", "add", str(other), "--table", str(table), "--bootstrap-samples", "20"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "metric version 0.0.1" in err and "--table" in err
    assert len(read_table(table)) == 1
    # rescore: the old row's run is scored again with this version, and the new run then adds
    assert cli(["results", "rescore", "--table", str(table), "--bootstrap-samples", "20"]) == 0
    assert "metric 0.0.1 -> " + METRIC_VERSION in capsys.readouterr().out
    rescored = read_table(table)
    assert [r["metric_version"] for r in rescored] == [METRIC_VERSION]
    assert rescored[0]["scores"] == json.loads(before)["scores"] and rescored[0]["run"] == row["run"]
    assert cli(["results", "add", str(other), "--table", str(table), "--bootstrap-samples", "20"]) == 0
    # a row whose run folder is gone: one line naming it, the table untouched
    kept = table.read_text(encoding="utf-8")
    import shutil
    shutil.rmtree(other)
    assert cli(["results", "rescore", "--table", str(table)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is gone" in err and "reference:uniform" in err
    assert table.read_text(encoding="utf-8") == kept


def test_a_damaged_table_names_its_line(tmp_path: Path, questions, capsys) -> None:
    table = tmp_path / "t.jsonl"
    table.write_text('{"model": "x"}\nnot json\n', encoding="utf-8")
    assert cli(["results", "show", "--table", str(table)]) == 2
    err = capsys.readouterr().err
    assert "line 1" in err and "missing plan" in err


@pytest.mark.slow
def test_a_real_run_is_added_and_shown(tmp_path: Path, capsys) -> None:
    run, table = tmp_path / "run", tmp_path / "t.jsonl"
    assert cli(["simulate", "--questions", "3", "--participants", "2", "--max-new-tokens", "8", "--plan", "none",
                "--seed", "0", "--out", str(run), "--no-progress"]) == 0
    assert cli(["results", "add", str(run), "--table", str(table), "--bootstrap-samples", "20"]) == 0
    (row,) = read_table(table)
    assert row["model"] == "smollm2-135m" and row["kind"] == "model" and row["backend"] == "transformers"
    assert row["model_parameters"] > 1e8 and "Q4_1" in row["quantisation"] and "CPUs" in row["hardware"]
    assert row["estimator"] == "sampling" and row["plan"] == "none" and row["language"] == "en"
    assert row["scores"]["metric_version"] == row["metric_version"]
    assert all(row[k] for k in KEY)
    capsys.readouterr()
    assert cli(["results", "show", "--table", str(table)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].split()[:3] == ["model", "plan", "estimator"] and "smollm2-135m" in shown[1]
    assert cli(["results", "add", str(run), "--table", str(table)]) == 2


def test_show_prints_infinity_for_worth_n_within_the_survey_noise(tmp_path, capsys) -> None:
    from culturesim.simulator.cli import main as cli_main

    row = {"model": "m", "plan": "none", "estimator": "sampling", "culture": "US", "language": "en",
           "dataset_version": "3.0", "metric_version": "3.0.0", "parse_rate": 1.0, "participants": 100, "questions": 60,
           "scores": {"worth_n": None, "worth_n_infinite": True, "worth_n_ci_low": 316.2, "worth_n_ci_high": None}}
    table = tmp_path / "t.jsonl"
    table.write_text(json.dumps(row) + "\n", encoding="utf-8")
    assert cli_main(["results", "show", "--table", str(table), "--score", "worth_n"]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert "∞" in line and "[316.200, ∞]" in line, line
