"""Personas drawn from real people (``simulate --personas respondents``): the prompt states the
respondent's sex and age group, the draws follow the survey weights of the committed respondents
config, a run without the option renders and records exactly what it did before, the cultures
without respondent-level data are refused in one line, and a real SmolLM2 run gives structure
fidelity's sex x age spread in scores.json (slow)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from scipy.stats import chisquare

from culturesim.dataset_builder.respondents import respondents_files
from culturesim.simulator.cli import build_parser
from culturesim.simulator.cli import main as cli
from culturesim.simulator.cli.simulate import main as simulate_main
from culturesim.simulator.experiments.study import load_spec, plan_cells, select_items
from culturesim.simulator.participants import PlanSettings, make_participant
from culturesim.simulator.personas import Respondent, load_persona_source
from culturesim.simulator.prompts import PROMPT_VERSION, option_order, render_question
from culturesim.simulator.questions import DEFAULT_DATASET_DIR, load_questions
from culturesim.simulator.runfolder import CONFIG_FILE, PERSONA_FIELDS, RESPONSES_FILE, read_rows
from culturesim.simulator.runner import build_config

CAPPUN = "gss2022.cappun.en"


@pytest.fixture(scope="module")
def source():
    return load_persona_source("respondents", "US")


def _question(qid: str = CAPPUN):
    return load_questions(culture="US", ids=[qid])[0]


def _first(source, seed: int, sex: str, age: str) -> int:
    """The first participant id whose drawn respondent is of that sex and age group."""
    return next(p for p in range(1000) if (source.draw(seed, p).sex, source.draw(seed, p).age_group) == (sex, age))


def test_the_prompt_states_sex_and_age_after_the_location(source) -> None:
    pid = _first(source, 5, "female", "30-49")
    p = make_participant(pid, "US", "prompt", seed=5, personas=source)
    q = _question()
    text = render_question(q, "US", option_order(q, 5, pid), p.location, demographics=p.demographics()).text
    where = p.location.label()
    assert text.startswith(f"I want you to act as a citizen from the United States ({where}), a woman aged 30 to 49. "
                           "You should obtain an answer from 2 choices. You should tell me the answer in the format "
                           "'Answer:' and explain afterward using 'Explanation:'. Request: ")
    assert p.persona()["sex"] == "female" and p.persona()["age_group"] == "30-49"
    assert p.persona()["respondent_id"].startswith("gss2022.")
    # without the location modification the phrase follows the country's name
    bare = make_participant(pid, "US", "none", seed=5, personas=source)
    assert render_question(q, "US", demographics=bare.demographics()).text.startswith(
        "I want you to act as a citizen from the United States, a woman aged 30 to 49. You should")
    # what is not recorded is not stated
    assert Respondent("x", "male", "50+").phrase() == "a man aged 50 or older"
    assert Respondent("x", "male", None).phrase() == "a man"
    assert Respondent("x", None, "18-29").phrase() == "a person aged 18 to 29"
    assert Respondent("x", None, None).phrase() is None
    with pytest.raises(ValueError, match="English only"):
        Respondent("x", "male", "50+").phrase("zh")


def test_draws_follow_the_weighted_sex_by_age_shares(source) -> None:
    # the shares computed here from the committed respondents config, with its cross-section weight
    table = pq.read_table(respondents_files(DEFAULT_DATASET_DIR)["US_respondents"],
                          columns=["weight", "sex", "age_group"]).to_pylist()

    def cell(sex, age):
        return f"{sex}/{age}" if sex and age else "unknown"

    weight = Counter()
    for r in table:
        weight[cell(r["sex"], r["age_group"])] += r["weight"]
    total = sum(weight.values())
    n = 20_000
    drawn = Counter(cell(r.sex, r.age_group) for r in (source.draw(7, p) for p in range(n)))
    cells = sorted(weight)
    assert len(cells) == 7 and set(drawn) <= set(cells)
    observed = [drawn[c] for c in cells]
    expected = [n * weight[c] / total for c in cells]
    assert chisquare(observed, expected).pvalue > 0.001
    # seeded: the same seed draws the same people, another seed others
    assert [source.draw(7, p) for p in range(50)] == [source.draw(7, p) for p in range(50)]
    assert [source.draw(7, p) for p in range(50)] != [source.draw(8, p) for p in range(50)]


def test_a_run_without_personas_renders_and_records_what_it_did(source) -> None:
    q = _question()
    plain = make_participant(3, "US", "all", seed=1)
    drawn = make_participant(3, "US", "all", seed=1, personas=source)
    # the respondent has its own stream: every other attribute is the plan's, with or without personas
    assert (plain.location, plain.generation, plain.memory_cap) == (drawn.location, drawn.generation, drawn.memory_cap)
    assert set(plain.persona()) == {"location", "memory_cap"} and plain.demographics() is None
    assert set(drawn.persona()) == {"location", "memory_cap", "respondent_id", "sex", "age_group"}
    assert set(drawn.persona()) <= set(PERSONA_FIELDS)
    order = option_order(q, 1, 3)
    before = render_question(q, "US", order, plain.location).text
    assert before == render_question(q, "US", order, plain.location, demographics=None).text
    after = render_question(q, "US", order, drawn.location, demographics=drawn.demographics()).text
    assert after == before.replace(f"({plain.location.label()}).", f"({plain.location.label()}), {drawn.demographics()}.")
    assert PROMPT_VERSION == "1.0"
    config = build_config([q], None, "all", 2, 1, PlanSettings(), 16, None)
    assert "personas" not in config
    assert build_config([q], None, "all", 2, 1, PlanSettings(), 16, None, personas=source)["personas"] == {
        "source": "respondents", "version": "1.0", "config": "US_respondents", "file": source.file.name,
        "respondents": len(source.respondents), "weight": "weight"}


@pytest.mark.parametrize("extra, words", [
    (["--culture", "CN"], "culture CN has no respondents config"),
    (["--culture", "EG", "--language", "en"], "culture EG has no respondents config"),
    (["--plan", "cao"], "not the cao baseline"),
    (["--plan", "none", "--estimator", "logprob"], "--estimator sampling only"),
])
def test_what_personas_cannot_do_is_refused_in_one_line(tmp_path: Path, capsys, extra, words) -> None:
    out = tmp_path / "run"
    code = cli(["simulate", "--personas", "respondents", "--questions", "2", "--participants", "2", "--seed", "0",
                "--out", str(out), "--no-progress", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and words in err, err
    assert not out.exists()


def test_the_study_spec_takes_personas(tmp_path: Path) -> None:
    spec = {"name": "p", "out": "out", "table": None, "participants": 2,
            "models": [{"name": "smollm2-135m", "backend": "transformers"}],
            "items": [{"culture": "US", "languages": ["en"], "n": 2}],
            "runs": [{"estimator": "sampling", "plans": ["prompt"], "personas": "respondents"}]}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    loaded = load_spec(path)
    cells = [c for c in plan_cells(loaded, select_items(loaded)) if c.group == "main"]
    assert [(c.path.parent.name, c.personas) for c in cells] == [("sampling-prompt-personas", "respondents")]
    for change, words in (({"items": [{"culture": "CN", "languages": ["zh"], "n": 2}]}, "culture CN"),
                          ({"runs": [{"estimator": "sampling", "plans": ["prompt"], "personas": "people"}]}, "'people'"),
                          ({"runs": [{"estimator": "sampling", "plans": ["prompt"], "personas": "respondents"},
                                     {"estimator": "sampling", "plans": ["prompt"]}]}, "with and without personas")):
        path.write_text(yaml.safe_dump({**spec, **change}), encoding="utf-8")
        with pytest.raises(ValueError, match="study spec: ") as info:
            load_spec(path)
        assert words in str(info.value)


# Two GSS items SmolLM2-135M answers often at temperature 0.5 in six tokens (altmed: 26 of 32 parsed).
RUN = ["simulate", "--culture", "US", "--question-ids", "gss2022.altmed.en,gss2022.abany.en", "--participants", "80",
       "--plan", "prompt+config", "--seed", "0", "--max-new-tokens", "6", "--max-beams", "1", "--temperature-range",
       "0.5", "--top-p-range", "1", "--batch-size", "80", "--no-progress", "--personas", "respondents"]


@pytest.mark.slow
def test_a_real_run_with_personas_scores_the_sex_by_age_spread(embedded_backend, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    argv = RUN + ["--out", str(out)]
    assert simulate_main(build_parser(argv).parse_args(argv), backend=embedded_backend(seed=0, batch_size=80)) == 0
    config = json.loads((out / CONFIG_FILE).read_text(encoding="utf-8"))
    assert config["personas"]["config"] == "US_respondents" and config["prompt_version"] == PROMPT_VERSION
    rows = read_rows(out / RESPONSES_FILE)
    assert len(rows) == 160
    for row in rows:
        persona = row["persona"]
        phrase = Respondent(persona["respondent_id"], persona["sex"], persona["age_group"]).phrase()
        assert phrase is None or f"), {phrase}. You should" in row["prompt"][-1]["content"]
    # resuming without the option names the difference before any model loads
    again = [a for a in argv if a not in ("--personas", "respondents")] + ["--resume"]
    with pytest.raises(ValueError, match="personas"):
        simulate_main(build_parser(again).parse_args(again))
    capsys.readouterr()
    assert cli(["score", str(out), "--bootstrap-samples", "20"]) == 0
    printed = capsys.readouterr().out
    structure = json.loads((out / "scores.json").read_text(encoding="utf-8"))["structure"]
    assert structure["available"] and structure["group_spread_note"] is None, structure.get("group_spread_note")
    assert structure["group_spread_simulated"] is not None and structure["group_spread_human"] is not None
    assert "sex x age spread (JS): simulated" in printed
