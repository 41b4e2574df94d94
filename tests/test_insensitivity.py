"""Insensitivity rules on hand-labelled responses, and the judge path over real HTTP."""

from __future__ import annotations

import pytest

from katan import katan  # noqa: F401 - fixture
from culturesim.simulator.analysis import insensitivity as ins

OPTIONS = ["Very important", "Rather important", "Not very important", "Not at all important"]
QUESTION = "How important is family in your life?"

# (raw text, status, positions, expected flags per dimension; None = left to the judge)
CASES = [
    ("Answer: 1. Very important\nExplanation: Family is the centre of life for most people in Texas.",
     "ok", [0], {"IU": False, "QC": False, "RP": False, "CV": None, "FF": None, "IR": False}),
    ("As an AI language model, I don't have personal opinions about family.",
     "refusal", [], {"IU": True, "RP": True, "FF": None}),
    ("Answer: 2 and 3\nExplanation: both.", "multiple_for_single", [], {"QC": True, "RP": None}),
    ("Answer: 7\nExplanation: family matters.", "invalid_option", [], {"QC": True}),
    ("Answer: 1. Very important\nExplanation: As an AI, I think family is very important.",
     "ok", [0], {"RP": True, "IU": False}),
    ("Answer: 1\nExplanation: I would say it is not at all important to me.",
     "ok", [0], {"CV": True}),
    ("The weather in Paris is sunny today. The weather in Paris is sunny today. The weather in Paris is sunny today. "
     "The weather in Paris is sunny today.", "no_answer", [], {"IR": True, "IU": True}),
    ("Bananas are yellow and grow on trees in warm climates.", "no_answer", [], {"IR": True, "IU": True}),
    ("Family is rather important to me, I think.", "ok", [1], {"IU": True, "QC": False}),
]


@pytest.mark.parametrize("text,status,positions,expected", CASES)
def test_rules_on_hand_labelled_responses(text, status, positions, expected):
    a = ins.assess_response(text, status, QUESTION, OPTIONS, "single_choice", positions, "en", key="k")
    for dim, flag in expected.items():
        assert a.cells[dim].flag is flag, (dim, a.cells[dim])
        if flag is not None:
            assert a.cells[dim].by == "rule" and a.cells[dim].reason


def test_paired_conflicts():
    rows = [
        {"key": "1:a.zh", "participant_id": 1, "parallel_id": "wvs7.Q1", "parsed": [1]},
        {"key": "1:a.en", "participant_id": 1, "parallel_id": "wvs7.Q1", "parsed": [2]},
        {"key": "2:a.zh", "participant_id": 2, "parallel_id": "wvs7.Q1", "parsed": [1]},
        {"key": "2:a.en", "participant_id": 2, "parallel_id": "wvs7.Q1", "parsed": [1]},
    ]
    assert ins.paired_conflicts(rows) == {"1:a.zh", "1:a.en"}


def test_parse_judgement():
    assert ins.parse_judgement('Sure. {"FF": true, "IR": "no"}', ["FF", "IR"]) == {"FF": True, "IR": False}
    assert ins.parse_judgement("FF: yes\nIR = false", ["FF", "IR"]) == {"FF": True, "IR": False}
    # The rubric itself (echoed back) is not a verdict.
    prompt = ins.judge_prompt(QUESTION, OPTIONS, "Answer: 1", ["FF", "IR"])
    assert ins.parse_judgement(prompt, ["FF", "IR"]) == {}


def test_summary_rates():
    a = ins.assess_response(*CASES[0][:2], QUESTION, OPTIONS, "single_choice", CASES[0][2])
    b = ins.assess_response(*CASES[1][:2], QUESTION, OPTIONS, "single_choice", CASES[1][2])
    summary = ins.summarise([a, b])
    assert summary["RP"]["flagged"] == 1 and summary["RP"]["decided"] == 2 and summary["RP"]["rate"] == 0.5
    assert summary["FF"]["decided"] == 0 and summary["FF"]["rate"] is None


@pytest.mark.slow
def test_judge_over_real_http(katan):  # noqa: F811
    from culturesim.simulator.backends import get_backend

    server = katan()
    backend = get_backend("openai", model=server.model, base_url=server.openai_url)
    try:
        assessments = [ins.assess_response(t, s, QUESTION, OPTIONS, "single_choice", p) for t, s, p, _ in CASES[:3]]
        items = [{"question": QUESTION, "options": OPTIONS, "raw_text": t} for t, *_ in CASES[:3]]
        ins.judge(assessments, items, backend)
    finally:
        backend.close()
    # The echo server repeats the prompt, which holds no verdict: the cells stay undecided,
    # and the request really went out (one per response with undecided cells).
    assert all(a.cells["FF"].flag is None for a in assessments)
    assert server.log_text().count("chat/completions") >= 3
