"""`culturesim report` over a `culturesim invariance` folder: the battery's numbers in the report.

The battery is built from hand-written run folders (tests/runfolders.py) so its answers are
known: in the unperturbed runs every participant answers by content, in the order run every
participant picks the first displayed option whatever it says (pure position bias). The
numbers are computed by simulator.analysis.invariance.analyse and must reach report.json and
report.html unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from runfolders import make_row, write_run
from culturesim.simulator.analysis.invariance import analyse, plan_conditions, write_result
from culturesim.simulator.analysis.report import build_report, fmt
from culturesim.simulator.questions import load_questions

PARTICIPANTS = 12


def _rows(questions, pick, rng) -> list[dict]:
    rows = []
    for pid in range(PARTICIPANTS):
        for q in questions:
            order, source = pick(q, rng)
            row = make_row(pid, q, "ok", [source])
            row["option_order"] = [int(x) for x in order]
            row["positions"] = [order.index(source)]
            rows.append(row)
    return rows


def _by_content(q, rng):
    order = list(range(q.num_options))
    return order, int(rng.choice(q.num_options, p=np.asarray(q.human_distribution)))


def _first_shown(q, rng):
    order = [int(x) for x in rng.permutation(q.num_options)]
    return order, order[0]


def test_report_shows_the_invariance_battery(tmp_path: Path) -> None:
    questions = [q for q in load_questions(culture="US") if q.question_type != "scale" and q.num_options >= 3][:4]
    assert len(questions) == 4
    battery = tmp_path / "battery"
    rng = np.random.default_rng(0)
    for name, pick in (("base-a", _by_content), ("base-b", _by_content), ("order-1", _first_shown)):
        write_run(battery / name, questions, _rows(questions, pick, rng), PARTICIPANTS)
    result = analyse(battery, plan_conditions(["order"], orders=1), questions, bootstrap=200, model="hand-written")
    write_result(battery, result)
    assert result["position_bias"]["positions"][0]["observed_share"] == 1.0  # the order run: always the first shown

    report = build_report([battery], tmp_path / "report", bootstrap_samples=50)
    [shown] = report["invariance"]
    assert shown["model"] == "hand-written" and shown["questions"] == 4
    assert shown["position_bias"]["index"] == result["position_bias"]["index"] > shown["position_bias"]["null_q95"]
    assert shown["movement"]["order"]["movement_mean"] == result["movement"]["order"]["movement_mean"]
    assert shown["bias_corrected_alignment"]["kl_mean"] == result["bias_corrected_alignment"]["kl_mean"]
    assert [r["dir"] for r in report["runs"]] == [str(battery / "base-a")]  # a battery alone: its baseline is the run
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    assert saved["invariance"][0]["position_bias"]["index"] == shown["position_bias"]["index"]

    page = (tmp_path / "report" / "report.html").read_text()
    assert "<h2 id=invariance>Invariance battery</h2>" in page
    m = result["movement"]["order"]
    for value in (m["movement_mean"], m["noise_mean"], m["excess_mean"], result["position_bias"]["index"],
                  result["bias_corrected_alignment"]["kl_mean"], result["source_order_alignment"]["kl_mean"]):
        assert fmt(value) in page, value
    assert "sampling noise" in page and "bias-corrected (permutation-averaged)" in page
