"""Who was asked: sub-population items carry a universe the prompt states, and the build checks it.

Golden values were counted independently from the 2022 year file (pandas value_counts of
``marital`` among the ``hapmar`` answerers: 1,455 of 1,455 are married, marital == 1).
"""

from __future__ import annotations

import numpy as np
import pytest

from culturesim.dataset_builder import microdata, universe
from culturesim.simulator.prompts import render_question
from culturesim.simulator.questions import Question


def _question(universe_sentence: str | None) -> Question:
    return Question(
        id="gss2022.hapmar.en", culture="US", language="en",
        question="Taking things all together, how would you describe your marriage?",
        options=("Very happy", "Pretty happy", "Not too happy"), option_codes=(1, 2, 3),
        question_type="single_choice", ordinal=True, human_distribution=(0.6, 0.35, 0.05), human_n=1455,
        universe=universe_sentence,
    )


def test_the_prompt_states_the_universe_before_the_question():
    text = render_question(_question("You are married."), "US").text
    assert "Request: You are married. Taking things all together, how would you describe your marriage?\n1. Very happy" in text


def test_a_question_asked_of_everyone_renders_as_before():
    text = render_question(_question(None), "US").text
    assert "Request: Taking things all together" in text and "married." not in text.split("Request:")[1].split("?")[0]


def test_the_loader_reads_the_universe_column():
    row = {"id": "x", "culture": "US", "language": "en", "question": "Q?", "options": ["a", "b"],
           "option_codes": [1, 2], "question_type": "single_choice", "ordinal": True,
           "human_distribution": [0.5, 0.5], "human_n": 300, "universe": "You have a paid job."}
    assert Question.from_record(row).universe == "You have a paid job."
    assert Question.from_record({**row, "universe": None}).universe is None


@pytest.fixture(scope="module")
def year2022(sources):
    frame = microdata.read_year_file(sources / "gss" / "gss2022.rds")
    return frame, universe.design_cells(frame)


def test_a_filtered_item_without_a_universe_stops_the_build(year2022):
    frame, cells = year2022
    answered = frame["hapmar"].notna().to_numpy()
    with pytest.raises(universe.UniverseError, match="sub-population"):
        universe.check("gss2022.hapmar", frame, cells, answered, 0.0, None)


def test_the_right_filter_passes_and_a_wrong_one_is_refused(year2022):
    frame, cells = year2022
    answered = frame["hapmar"].notna().to_numpy()
    married = universe.Universe("You are married.", (("marital", (1,)),), "married")
    rates = universe.check("gss2022.hapmar", frame, cells, answered, 0.0, married)
    assert rates["universe_coverage"] == 1.0  # 1,455 of 1,455 answerers are married
    working = universe.Universe("You have a paid job.", (("wrkstat", (1, 2, 3)),), "wrong on purpose")
    with pytest.raises(universe.UniverseError, match="filter"):
        universe.check("gss2022.hapmar", frame, cells, answered, 0.0, working)


def test_a_split_ballot_item_counts_as_asked_of_everyone(year2022):
    frame, cells = year2022
    answered = frame["natspac"].notna().to_numpy()  # asked of random halves (ballots and forms)
    assert np.mean(answered) < 0.6
    assert universe.check("gss2022.natspac", frame, cells, answered, 0.0, None)["asked_rate"] > universe.MIN_ASKED_RATE


def test_every_universe_entry_is_a_sentence_with_a_filter():
    entries = universe.load_universes()
    assert {"hapmar", "popespks", "trdunion"} <= set(entries)
    for var, entry in entries.items():
        assert entry.sentence.startswith("You ") and entry.sentence.endswith("."), var
        assert entry.clauses, var
