"""`culturesim score` prints a short summary a reader can act on: parse rate, dropped
questions by name, rounded numbers, and a warning when most responses did not parse."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from culturesim.simulator.analysis.scoring import MIN_ANSWERS_PER_QUESTION, PARSE_RATE_WARNING
from runfolders import make_row, write_run
from culturesim.simulator.questions import load_questions

ROOT = Path(__file__).resolve().parent.parent


def _score(run: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "culturesim.simulator.cli", "score", str(run), "--bootstrap-samples", "50"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_mostly_unparsed_run_is_summarised_and_warned_about(tmp_path):
    a, b, c = load_questions("US", limit=3)
    rows = [make_row(0, a, "ok", [0]), make_row(1, a, "ok", [1]), make_row(2, a, "no_answer", []), make_row(3, a, "no_answer", []),
            make_row(0, b, "ok", [0]), make_row(1, b, "refusal", []), make_row(2, b, "number_text_disagree", []),
            make_row(3, b, "no_answer", []),
            make_row(0, c, "no_answer", []), make_row(1, c, "no_answer", []), make_row(2, c, "invalid_option", []),
            make_row(3, c, "multiple_for_single", [])]  # an old run's status still reads
    out = _score(write_run(tmp_path / "run", [a, b, c], rows, participants=4))
    lines = out.splitlines()
    assert len(lines) <= 14
    assert lines[0].startswith("Worth N respondents: n/a")  # the headline comes first, even when undefined
    assert lines[1].startswith("3 of 12 responses parsed to an answer (25%); 2 of 3 questions scored, "
                               "1.5 parsed answers per scored question (1 to 2)")
    assert f"dropped: {c.id} (no parsed answer (2 no_answer, 1 invalid_option, 1 multiple_for_single))" in out
    assert "not parsed: no_answer 5," in out
    assert not re.search(r"\.\d{4,}", out), out  # rounded, no raw floats
    warnings = [ln for ln in lines if ln.startswith("warning:")]
    assert any("Only 25% of responses parsed" in w and f"below {PARSE_RATE_WARNING:.0%}" in w for w in warnings)
    assert any(f"fewer than {MIN_ANSWERS_PER_QUESTION} parsed answers" in w for w in warnings)
    assert lines[-1] == f"scores: {tmp_path / 'run' / 'scores.json'}"


def test_well_parsed_run_has_no_parse_warning(tmp_path):
    a, b = load_questions("US", limit=2)
    rows = [make_row(p, q, "ok", [p % 2]) for q in (a, b) for p in range(6)]
    out = _score(write_run(tmp_path / "run", [a, b], rows, participants=6))
    assert re.match(r"Worth N respondents: (∞, as close to US opinion as the survey itself|[\d.,]+, as close to US "
                    r"opinion as a random sample of [\d.,]+ Americans)", out.splitlines()[0]), out
    assert out.splitlines()[1].startswith("12 of 12 responses parsed to an answer (100%); 2 of 2 questions scored")
    assert "survey's own noise" in out and "perfect simulator with these participants" in out
    assert "Only" not in out and "dropped" not in out and "not parsed" not in out
