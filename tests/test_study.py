"""``culturesim study``: a spec is checked before anything runs, the items are seeded and shared by
every model and language, and a study run twice (or killed) finishes every cell exactly once.

The spec checks and the item selection take no model; the end-to-end study runs the embedded
SmolLM2 on a few items (slow).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from culturesim.simulator.analysis.results_table import read_table
from culturesim.simulator.cli import main as cli
from culturesim.simulator.experiments.study import STUDY_FILE, load_spec, plan_cells, select_items
from culturesim.simulator.questions import load_questions
from culturesim.simulator.runfolder import RESPONSES_FILE, read_rows, write_rows

REPO = Path(__file__).resolve().parent.parent

TINY = {
    "name": "tiny", "out": "out", "table": "t.jsonl", "seed": 0, "participants": 2, "max_new_tokens": 8,
    "bootstrap_samples": 20, "settings": {"max_beams": 1},
    "models": [{"name": "smollm2-135m", "backend": "transformers"}],
    "items": [{"culture": "US", "languages": ["en"], "n": 2}, {"culture": "CN", "languages": ["zh", "en"], "n": 2}],
    "runs": [{"estimator": "sampling", "plans": ["none"]}, {"estimator": "logprob", "plans": ["none"]}],
    "references": ["uniform", "humans-5"],
}


def _spec(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}), encoding="utf-8")
    return path


def test_the_shipped_spec_plans_the_issue_s_study() -> None:
    spec = load_spec(REPO / "benchmarks" / "study.yaml")
    items = select_items(spec)
    assert len(items["US-en"]) >= 60 and len(items["CN-zh"]) >= 40 and len(items["CN-en"]) >= 40
    assert len(items["ablation"]) >= 30 and set(items["ablation"]) <= set(items["US-en"])
    sources = {q.source for q in load_questions(culture="US", language="en", ids=items["US-en"])}
    assert sources == {"GSS", "WVS"}
    # zh and en ask the same items
    cn = {lang: {q.parallel_id for q in load_questions(culture="CN", language=lang, ids=items[f"CN-{lang}"])}
          for lang in ("zh", "en")}
    assert cn["zh"] == cn["en"]
    cells = plan_cells(spec, items)
    plans = {(c.estimator, c.plan) for c in cells if c.group == "main"}
    assert {("sampling", "all"), ("sampling", "none"), ("sampling", "cao"), ("sampling", "ccsv"), ("logprob", "none"),
            ("verbalized", "none")} <= plans
    assert {c.plan for c in cells if c.group == "ablation"} == {"none", "prompt", "config", "memory", "all"}
    assert {c.model.name for c in cells if c.model} == {"smollm2-135m", "qwen2.5-coder-1.5b"}
    assert {c.plan for c in cells if c.group == "reference"} == {"uniform", "modal", "humans-20", "humans-100"}
    assert len({c.path for c in cells}) == len(cells)


def test_items_are_seeded(tmp_path: Path) -> None:
    a = select_items(load_spec(_spec(tmp_path)))
    assert a == select_items(load_spec(_spec(tmp_path)))
    assert a != select_items(load_spec(_spec(tmp_path, seed=1)))


@pytest.mark.parametrize("change, words", [
    ({"models": [{"name": "m", "backend": "nope"}]}, "models[0].backend 'nope'"),
    ({"models": [{"name": "m", "backend": "transformers", "threads": 2}]}, "threads applies to the llamacpp"),
    ({"runs": [{"estimator": "logprob", "plans": ["memory"]}]}, "cannot run --plan memory"),
    ({"runs": [{"estimator": "sampling", "plans": ["everything"]}]}, "everything"),
    ({"items": [{"culture": "US", "languages": ["en"], "n": 0}]}, "items[0].n is 0"),
    ({"references": ["humans"]}, "Unknown reference 'humans'"),
    ({"colour": "red"}, "unknown key(s) colour"),
    ({"items": [{"culture": "CN", "languages": ["zh"], "n": 100000}]}, "ask for at most n"),
])
def test_a_bad_spec_is_one_line(tmp_path: Path, capsys, change, words) -> None:
    assert cli(["study", str(_spec(tmp_path, **change)), "--plan-only"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words in err, err


def test_the_shipped_table_holds_every_cell_of_the_study() -> None:
    """The committed results (space/leaderboard.jsonl, what the Space and README show) hold a scored row for
    every main cell and reference of the shipped spec, each row's run folder committed beside it, one metric
    and dataset version, and an interval with every score."""
    spec = load_spec(REPO / "benchmarks" / "study.yaml")
    rows = [r for r in read_table(spec.table) if r.get("study") == spec.name]
    cells = [c for c in plan_cells(spec, select_items(spec)) if c.group in ("main", "reference")]
    have = {(spec.table.parent / r["run"]).resolve() for r in rows}
    missing = [str(c.path.relative_to(spec.out)) for c in cells if c.path.resolve() not in have]
    assert not missing, f"cells without a row: {missing}"
    assert len(rows) == len(cells) == 48
    assert len({(r["dataset_version"], r["metric_version"]) for r in rows}) == 1
    for r in rows:
        assert (spec.table.parent / r["run"] / RESPONSES_FILE).is_file(), r["run"]
        s = r["scores"]
        assert s["normalised_kl_ci_low"] <= s["normalised_kl"] + 1e-9 <= s["normalised_kl_ci_high"] + 2e-9, r["run"]
    assert {r["model"] for r in rows if r.get("kind") != "reference"} == {"smollm2-135m", "qwen2.5-coder-1.5b"}


def test_plan_only_runs_nothing(tmp_path: Path, capsys) -> None:
    assert cli(["study", str(_spec(tmp_path)), "--plan-only"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m/sampling-none/US-en: 4 requests" in out
    assert json.loads((tmp_path / "out" / STUDY_FILE).read_text())["items"]["CN-zh"]
    assert not (tmp_path / "out" / "smollm2-135m").exists() and not (tmp_path / "t.jsonl").exists()
    # the items are fixed once chosen: a changed item set is refused
    assert cli(["study", str(_spec(tmp_path, seed=3)), "--plan-only"]) == 2
    assert "Restore the spec, or give the study a new out folder" in capsys.readouterr().err


def test_plan_only_works_while_another_process_runs_the_study(tmp_path: Path, capsys) -> None:
    """A running study holds its folder's writer lock for hours; looking at its plan writes nothing
    once the items are recorded, so it must not be refused. Running it still is."""
    spec = _spec(tmp_path)
    assert cli(["study", str(spec), "--plan-only"]) == 0  # records the items
    record = (tmp_path / "out" / STUDY_FILE).read_bytes()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from culturesim.simulator.runfolder import RunLock\n"
        "with RunLock(sys.argv[1]):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(120)\n"), str(tmp_path / "out")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        assert cli(["study", str(spec), "--plan-only"]) == 0
        assert "smollm2-135m/sampling-none/US-en: 4 requests" in capsys.readouterr().out
        assert (tmp_path / "out" / STUDY_FILE).read_bytes() == record
        assert cli(["study", str(spec), "--cells", "*/logprob-none/US-en"]) == 2
        assert "being written by another culturesim process" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()


def test_cells_picks_and_orders_the_cells_a_short_session_runs(tmp_path: Path, capsys) -> None:
    assert cli(["study", str(_spec(tmp_path)), "--plan-only", "--cells", "*/logprob-none/CN-*,*/sampling-none/US-en"]) == 0
    lines = [l.split(":")[0] for l in capsys.readouterr().out.splitlines() if l.startswith("smollm2")]
    # in the patterns' order, each cell once, nothing else
    assert lines == ["smollm2-135m/logprob-none/CN-zh", "smollm2-135m/logprob-none/CN-en",
                     "smollm2-135m/sampling-none/US-en"]
    # a pattern matching nothing is one line naming the cells, not hours of nothing
    assert cli(["study", str(_spec(tmp_path)), "--plan-only", "--cells", "qwen*/*"]) == 2
    err = capsys.readouterr().err
    assert "--cells 'qwen*/*' matches no cell" in err and "smollm2-135m/sampling-none/CN-en" in err


def test_an_ablation_added_later_draws_the_items_a_planned_one_would(tmp_path: Path, capsys) -> None:
    ablation = {"plans": ["none", "all"], "culture": "US", "language": "en", "n": 2}
    items = {"culture": "US", "languages": ["en"], "n": 4}
    assert cli(["study", str(_spec(tmp_path, items=[items])), "--plan-only"]) == 0  # study.json without ablation
    assert cli(["study", str(_spec(tmp_path, items=[items], ablation=ablation)), "--plan-only"]) == 0
    recorded = json.loads((tmp_path / "out" / STUDY_FILE).read_text())
    planned = select_items(load_spec(_spec(tmp_path, items=[items], ablation=ablation)))
    assert recorded["items"] == planned and len(planned["ablation"]) == 2
    # a changed ablation is still refused once recorded
    other = {**ablation, "n": 3}
    assert cli(["study", str(_spec(tmp_path, items=[items], ablation=other)), "--plan-only"]) == 2
    assert "ablation" in capsys.readouterr().err


@pytest.mark.slow
def test_a_study_runs_once_and_resumes(tmp_path: Path, capsys) -> None:
    spec = _spec(tmp_path)
    assert cli(["study", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "prompt tok/s" in out and "about" in out  # the estimate before the cells
    rows = read_table(tmp_path / "t.jsonl")
    keys = {(r["model"], r["estimator"], r["culture"], r["language"]) for r in rows}
    for label in (("US", "en"), ("CN", "zh"), ("CN", "en")):
        for model, estimator in (("smollm2-135m", "sampling"), ("smollm2-135m", "logprob"),
                                 ("reference:uniform", "reference"), ("reference:humans-5", "sampling")):
            assert (model, estimator, *label) in keys
    assert len(rows) == 12 and all(r["study"] == "tiny" for r in rows)
    # killed mid-cell: its last rows are lost; the next start asks only for those
    cell = tmp_path / "out" / "smollm2-135m" / "sampling-none" / "CN-zh"
    kept = read_rows(cell / RESPONSES_FILE)
    write_rows(cell, kept[:-2])
    assert cli(["study", str(spec)]) == 0
    again = capsys.readouterr().out
    assert "1 cells to run" in again and len(read_rows(cell / RESPONSES_FILE)) == len(kept)
    assert len(read_table(tmp_path / "t.jsonl")) == 12
    assert cli(["study", str(spec)]) == 0
    assert "loading" not in capsys.readouterr().out
