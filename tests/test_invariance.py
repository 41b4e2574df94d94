"""The invariance battery: label styles and reversal as rendered, letter answers read by the one
parser, and the battery's statistics checked against independent computations (scipy's JS,
a hand-counted total variation) and by seeded simulation (a content-only model stays inside
the sampling-noise reference, a position-biased one does not)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from culturesim.simulator.analysis import invariance as inv
from culturesim.simulator.experiments.invariance import run_battery
from culturesim.simulator.labels import letters_to_numbers
from culturesim.simulator.parsing import parse_response
from culturesim.simulator.presentation import Paraphrases, Presentation
from culturesim.simulator.prompts import render_question
from culturesim.simulator.questions import Question


def q(id="t.imp", options=("Very important", "Rather important", "Not very important", "Not at all important"),
      qtype="single_choice", ordinal=True, question="How important is family in your life?") -> Question:
    k = len(options)
    return Question(id=id, culture="US", language="en", question=question, options=tuple(options),
                    option_codes=tuple(range(1, k + 1)), question_type=qtype, ordinal=ordinal,
                    human_distribution=tuple([1 / k] * k), human_n=100)


IMP = q()
SCALE = q("t.scale", ("1 - low", "2", "3", "4", "5 - high"), "scale", True, "Rate it")


# --------------------------------------------------------------------------------------
# Rendering and parsing
# --------------------------------------------------------------------------------------


def test_letter_and_bare_labels_render_exactly():
    r = render_question(IMP, "US", order=(1, 0, 2, 3), labels="letters")
    assert r.request.splitlines()[1:] == ["A. Rather important", "B. Very important", "C. Not very important",
                                          "D. Not at all important"]
    t = render_question(IMP, "US", labels="text")
    assert t.request.splitlines()[1:] == list(IMP.options)
    with pytest.raises(ValueError, match="numeric scale"):
        render_question(SCALE, "US", labels="letters")
    with pytest.raises(ValueError, match="Unknown label style 'roman'"):
        render_question(IMP, "US", labels="roman")


@pytest.mark.parametrize("text, expected", [
    ("Answer: B", "Answer: 2"),
    ("Answer: (C) Not very important", "Answer: (3) Not very important"),
    ("A good citizen would say Answer: A.", "A good citizen would say Answer: 1."),
    ("I think D", "I think 4"),
    ("答案：B", "答案：2"),
    ("答案：Ｃ", "答案：3"),                     # full-width, as Chinese answers write it
    ("BC and U.S.A", "BC and U.S.A"),          # letters next to letters stay
    ("Answer: E", "Answer: E"),                # outside A..D: not an option
    ("A: the second one", "A: the second one"),  # the parser's own answer label
])
def test_letters_to_numbers(text, expected):
    assert letters_to_numbers(text, 4) == expected


def test_letter_answers_parse_to_the_displayed_option():
    r = render_question(IMP, "US", order=(3, 2, 1, 0), labels="letters")
    for text, source in [("Answer: B\nExplanation: x", 2), ("Answer: A. Not at all important", 3),
                         ("Answer: D", 0), ("A strong family matters. Answer: C", 1)]:
        parsed = parse_response(r.parser_text(text), r.options, IMP.question_type, scale=r.scale, language="en")
        assert parsed.status.value == "ok", text
        assert r.to_source(parsed.positions) == (source,), text
    # a number answer to letter labels is not silently read: "Answer: B" and "2" mean the same only with numbers
    numbers = render_question(IMP, "US", order=(3, 2, 1, 0))
    assert numbers.parser_text("Answer: B") == "Answer: B"


def test_presentation_orders_and_paraphrases():
    assert Presentation(order="reverse").order_for(IMP, 0, 0, True) == (3, 2, 1, 0)
    assert Presentation(order="reverse").order_for(SCALE, 0, 0, True) == (0, 1, 2, 3, 4)
    assert Presentation(order="source").order_for(IMP, 0, 5, True) == (0, 1, 2, 3)
    assert Presentation(labels="letters").render(SCALE, "US", 0, 0, None, True).labels == "numbers"
    with pytest.raises(ValueError, match="Unknown option order 'sideways'"):
        Presentation(order="sideways")
    para = Paraphrases({IMP.id: (("t.imp~p1", "How much does family matter to you?"),)}, include_original=False)
    r = Presentation(order="source", paraphrases=para).render(IMP, "US", 0, 3, None, False)
    assert r.variant == "t.imp~p1" and "How much does family matter to you?" in r.text
    assert r.options == IMP.options
    # with the original among the choices, the draw is seeded per participant and uses both
    both = Paraphrases(para.variants, include_original=True)
    draws = {both.choose(IMP, 7, p)[0] for p in range(40)}
    assert draws == {None, "t.imp~p1"}
    assert [both.choose(IMP, 7, p) for p in range(10)] == [both.choose(IMP, 7, p) for p in range(10)]


def test_conditions_and_their_validation():
    names = [c.name for c in inv.plan_conditions(["order", "labels", "reverse"], orders=2)]
    assert names == ["base-a", "base-b", "order-1", "order-2", "labels-letters", "labels-text", "reverse"]
    with pytest.raises(ValueError, match="Unknown perturbation.*wording"):
        inv.plan_conditions(["wording"])
    with pytest.raises(ValueError, match="needs --paraphrases"):
        run_battery("/tmp/unused", [IMP], None, inv.plan_conditions(["paraphrase"]))


# --------------------------------------------------------------------------------------
# Statistics, on synthetic runs
# --------------------------------------------------------------------------------------


def _run(name, qs, participants, rng, choose, shuffle=True):
    """A run as the analysis sees it: ``choose(question, order) -> displayed position``."""
    rows, answers = [], {}
    for question in qs:
        for pid in range(participants):
            order = list(range(question.num_options))
            if shuffle:
                rng.shuffle(order)
            pos = choose(question, order)
            rows.append({"question_id": question.id, "participant_id": pid, "status": "ok", "positions": [pos],
                         "option_order": order})
            answers.setdefault(question.id, []).append(order[pos])
    return inv._Run(name, "order", rows, answers, 1.0)


QS = [q(f"t.q{i}") for i in range(12)]
CONTENT = np.array([0.5, 0.3, 0.15, 0.05])


def _content_model(rng):
    def choose(question, order):
        p = CONTENT[order]
        return int(rng.choice(len(order), p=p / p.sum()))
    return choose


def _first_model(rng, share=0.8):
    content = _content_model(rng)

    def choose(question, order):
        return 0 if rng.random() < share else content(question, order)
    return choose


def test_js_through_the_metric_equals_scipy():
    rng = random.Random(0)
    a = _run("a", QS[:3], 10, rng, _content_model(np.random.default_rng(1)))
    b = _run("b", QS[:3], 10, rng, _content_model(np.random.default_rng(2)))
    got = inv._js(a, b, QS[:3])
    for question in QS[:3]:
        pa = np.bincount(a.answers[question.id], minlength=4) / 10
        pb = np.bincount(b.answers[question.id], minlength=4) / 10
        assert got[question.id] == pytest.approx(jensenshannon(pa, pb, base=2), abs=1e-9)


def test_position_bias_index_hand_counted():
    # one question, two answers, content uniform over 2 options: predicted 1/2 per position;
    # both at position 1 -> observed (1, 0): total variation 0.5.
    two = q("t.two", ("Yes", "No"), ordinal=False)
    run = inv._Run("r", "order", [
        {"question_id": two.id, "status": "ok", "positions": [0], "option_order": [0, 1]},
        {"question_id": two.id, "status": "ok", "positions": [0], "option_order": [1, 0]},
    ], {two.id: [0, 1]}, 1.0)
    pb = inv.position_bias([run], [two], 200, np.random.default_rng(0))
    assert pb["index"] == pytest.approx(0.5)
    assert [p["observed_share"] for p in pb["positions"]] == [1.0, 0.0]
    assert [p["predicted_share"] for p in pb["positions"]] == [0.5, 0.5]


def test_position_bias_separates_position_from_content_by_simulation():
    # content-only answers: the reference's p-value is calibrated (rejects about 5% at 0.05)
    pvalues = []
    for s in range(60):
        rng, shuffle_rng = np.random.default_rng(s), random.Random(s)
        runs = [_run(f"order-{j}", QS, 20, shuffle_rng, _content_model(rng)) for j in range(2)]
        pvalues.append(inv.position_bias(runs, QS, 100, np.random.default_rng(1000 + s))["p_value"])
    assert np.mean(np.array(pvalues) < 0.05) <= 0.12
    assert 0.35 < np.median(pvalues) < 0.65
    # position-biased answers: far beyond the reference, and the first position carries the excess
    for s in range(5):
        rng, shuffle_rng = np.random.default_rng(s), random.Random(s)
        runs = [_run(f"order-{j}", QS, 20, shuffle_rng, _first_model(rng)) for j in range(2)]
        biased = inv.position_bias(runs, QS, 200, np.random.default_rng(0))
        assert biased["index"] > 5 * biased["null_q95"] and biased["p_value"] < 0.01
        assert biased["positions"][0]["observed_share"] > 0.8 > biased["positions"][0]["predicted_share"]


def test_movement_against_the_sampling_noise_yardstick_by_simulation():
    rng = np.random.default_rng(5)
    r = random.Random(5)
    content = _content_model(rng)
    base_a = _run("base-a", QS, 20, r, content, shuffle=False)
    base_b = _run("base-b", QS, 20, r, content, shuffle=False)
    same = _run("same", QS, 20, r, content, shuffle=False)

    def reversed_content(question, order):  # a model whose preference flips: real movement
        p = CONTENT[::-1][order]
        return int(rng.choice(len(order), p=p))

    moved = _run("moved", QS, 20, r, reversed_content, shuffle=False)
    null = inv._movement([same], base_a, base_b, QS, 1000, np.random.default_rng(0))
    real = inv._movement([moved], base_a, base_b, QS, 1000, np.random.default_rng(0))
    assert null["questions"] == real["questions"] == len(QS)
    assert null["excess_ci_low"] < 0 < null["excess_ci_high"] and null["beyond_noise"] is False
    assert real["beyond_noise"] is True and real["movement_mean"] > 2 * real["noise_mean"]
    # the yardstick is the JS between the two baselines, question by question
    noise = inv._js(base_a, base_b, QS)
    assert real["noise_mean"] == pytest.approx(np.mean([noise[x.id] for x in QS]))


# --------------------------------------------------------------------------------------
# The battery on the embedded model, end to end
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_battery_on_the_embedded_model(tmp_path, capsys):
    """A real, tiny battery (2 questions, 4 participants, 24 new tokens): every run is an
    ordinary run folder shown as its condition says, and the reported numbers are recounted
    here from the rows (the JS with scipy)."""
    from culturesim.simulator.cli import main as cli_main

    ids = "wvs7.US.Q1.en,gss2022.cappun.en"
    assert cli_main(["invariance", "--question-ids", ids, "--participants", "4", "--max-new-tokens", "24",
                     "--perturbations", "order,labels,reverse", "--orders", "1", "--label-styles", "letters",
                     "--bootstrap", "100", "--out", str(tmp_path), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "position-bias index" in printed and "movement under order" in printed and "sampling noise" in printed
    result = json.loads((tmp_path / "invariance.json").read_text())
    assert set(result["runs"]) == {"base-a", "base-b", "order-1", "labels-letters", "reverse"}
    assert set(result["movement"]) == {"order", "labels", "reverse"}
    rows = {name: [json.loads(x) for x in (tmp_path / name / "responses.jsonl").read_text().splitlines()]
            for name in result["runs"]}
    seeds = {name: json.loads((tmp_path / name / "config.json").read_text())["seed"] for name in result["runs"]}
    assert sorted(seeds.values()) == [0, 1, 2, 3, 4]
    for r in rows["labels-letters"]:
        assert "\nA. " in r["prompt"][-1]["content"] and r["presentation"]["labels"] == "letters"
    for r in rows["reverse"]:
        assert r["option_order"] == sorted(r["option_order"], reverse=True)
    for r in rows["base-a"] + rows["base-b"]:
        assert r["option_order"] == sorted(r["option_order"])

    def dist(name, qid, k):
        counts = np.zeros(k)
        for r in rows[name]:
            if r["question_id"] == qid and r["status"] == "ok":
                counts[r["option_indices"][0]] += 1
        return counts / counts.sum() if counts.sum() else None

    from culturesim.simulator.questions import load_questions
    qs = {x.id: x for x in load_questions(culture="US", ids=ids.split(","))}
    m = result["movement"]["reverse"]
    for pq_row in m.get("per_question", []):
        k = qs[pq_row["id"]].num_options
        a, b, c = (dist(n, pq_row["id"], k) for n in ("base-a", "base-b", "reverse"))
        assert pq_row["noise"] == pytest.approx(jensenshannon(a, b, base=2), abs=1e-9)
        assert pq_row["movement"] == pytest.approx(
            (jensenshannon(c, a, base=2) + jensenshannon(c, b, base=2)) / 2, abs=1e-9)
    pb = result["position_bias"]
    if pb:
        single = [r for r in rows["order-1"] if r["status"] == "ok" and len(r["positions"]) == 1]
        assert pb["answers"] == len(single)
        first = sum(r["positions"][0] == 0 for r in single) / len(single)
        assert pb["positions"][0]["observed_share"] == pytest.approx(first)


def test_battery_over_http_with_paraphrases_renders_every_condition(tmp_path, monkeypatch):
    """The whole battery through the runner against llm-katan's echo server (fast): each
    condition's prompts are what it says, the paraphrase run shows only variants, and the
    analysis reports what it could (echoed prompts parse to few answers) without failing."""
    from katan import start_katan
    from culturesim.simulator.backends import get_backend
    from culturesim.simulator.questions import load_questions

    for env in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(env, raising=False)
    qs = load_questions(culture="US", ids=["wvs7.US.Q1.en", "gss2022.cappun.en"])
    para = Paraphrases({"wvs7.US.Q1.en": (("wvs7.US.Q1.en~p0", "How much does family matter in your life?"),)})
    conditions = inv.plan_conditions(["order", "labels", "reverse", "paraphrase"], orders=1)
    with start_katan() as server:
        backend = get_backend("openai", model="katan-echo", base_url=server.openai_url)
        try:
            run_battery(tmp_path, qs, backend, conditions, participants=5, seed=10, max_new_tokens=8,
                            paraphrases=para, progress=False)
        finally:
            backend.close()
    rows = {c.name: [json.loads(x) for x in (tmp_path / c.name / "responses.jsonl").read_text().splitlines()]
            for c in conditions}
    for r in rows["paraphrase"]:
        prompt = r["prompt"][-1]["content"]
        if r["question_id"] == "wvs7.US.Q1.en":
            assert r["presentation"]["variant"] == "wvs7.US.Q1.en~p0" and "How much does family matter" in prompt
        else:  # no variant: the source wording
            assert r["presentation"]["variant"] is None
    assert all("\nFavor\nOppose" in r["prompt"][-1]["content"] for r in rows["labels-text"]
               if r["question_id"] == "gss2022.cappun.en")
    assert len({tuple(r["option_order"]) for r in rows["order-1"] if r["question_id"] == "wvs7.US.Q1.en"}) > 1
    result = inv.analyse(tmp_path, conditions, qs, bootstrap=50)
    assert set(result["movement"]) == {"order", "labels", "reverse", "paraphrase"}
    assert result["movement"]["paraphrase"]["questions"] <= 1
    inv.write_result(tmp_path, result)
    assert (tmp_path / "invariance.md").read_text().startswith("invariance battery:")
