"""The verbalized estimator's prompt and parser: statuses like the answer parser's, shares
renormalised with the raw sum kept, never raising."""

from __future__ import annotations

import random

import pytest

from culturesim.simulator.estimators.verbalized import parse_verbalized, render_verbalized
from culturesim.simulator.questions import Question

OPTIONS = ["Very important", "Rather important", "Not very important", "Not at all important"]


def question(options=OPTIONS, qtype="single_choice", codes=None) -> Question:
    n = len(options)
    return Question(id="wvs7.US.Q1.en", culture="US", language="en", question="How important is family in your life?",
                    options=tuple(options), option_codes=tuple(codes or range(1, n + 1)), question_type=qtype,
                    ordinal=True, human_distribution=tuple([1 / n] * n), human_n=100)


def test_the_requested_format_is_read_and_renormalised_with_the_raw_sum_kept():
    text = "1. Very important: 40%\n2. Rather important: 30%\n3. Not very important: 60%\n4. Not at all important: 20%"
    r = parse_verbalized(text, OPTIONS)
    assert r.status == "ok"
    assert r.shares == (40, 30, 60, 20)
    assert r.raw_sum == 150
    assert r.distribution == pytest.approx((40 / 150, 30 / 150, 60 / 150, 20 / 150))


@pytest.mark.parametrize("text", [
    "1: 10%\n2: 20 %\n3 - 30 percent\n4) Not at all important = 40",
    "Very important: 10%\nrather important: 20%\n**Not very important**: 30%\nNot at all important: 40%",
    "１．Very important：10％\n２．Rather important：20％\n３．Not very important：30％\n４．Not at all important：40％",
    "Here is my estimate:\n1. Very important: 10.0%\n2. Rather important: 20%\n3. Not very important: 30\n"
    "4. Not at all important: 40%\n5. Not very important: 99%",  # reading stops once all four have a share
])
def test_other_spellings_of_the_same_shares(text):
    r = parse_verbalized(text, OPTIONS)
    assert r.status == "ok", r.detail
    assert r.distribution == pytest.approx((0.1, 0.2, 0.3, 0.4))


@pytest.mark.parametrize("text, status, detail", [
    ("44.4%", "no_answer", "no percentage"),
    ("1. Very important: 60%\n2. Rather important: 40%", "no_answer", "2 of 4 options (missing [3, 4])"),
    ("1. Very important: 0%\n2. Rather important: 0%\n3. Not very important: 0%\n4. Not at all important: 0%",
     "no_answer", "every share is 0%"),
    ("1. Very important: 200%", "invalid_option", "above 100"),
    ("7: 20%", "invalid_option", "label 7"),
    ("1. Rather important: 20%", "invalid_option", "names option 2"),
    ("1: 20%\n1: 30%", "multiple_for_single", "given 20% and 30%"),
    ("As an AI language model, I cannot estimate what people think.", "refusal", "no percentage"),
])
def test_statuses_say_why_nothing_was_scored(text, status, detail):
    r = parse_verbalized(text, OPTIONS)
    assert r.status == status
    assert detail in r.detail
    assert r.distribution is None


def test_scale_labels_are_the_displayed_numbers():
    r = parse_verbalized("0: 10%\n1: 30%\n2: 60%", ["0 - worst", "1", "2 - best"], numbers=[0, 1, 2])
    assert r.status == "ok"
    assert r.distribution == pytest.approx((0.1, 0.3, 0.6))


def test_nothing_raises_on_arbitrary_text():
    rng = random.Random(0)
    alphabet = "0123456789%:.-= \n\tabcAnswer１２％：一二"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        r = parse_verbalized(text, OPTIONS)
        assert r.status in {"ok", "no_answer", "invalid_option", "multiple_for_single", "refusal"}
        if r.status == "ok":
            assert sum(r.distribution) == pytest.approx(1.0)
    for weird in (None, 12, b"1: 50%", "9" * 100_000 + "%"):
        assert parse_verbalized(weird, OPTIONS).status in {"no_answer", "invalid_option"}


def test_prompt_shows_the_shuffled_options_and_one_blank_each():
    prompt = render_verbalized(question(), "US", order=[2, 0, 3, 1], location="Texas, Houston")
    assert prompt.rendered.order == (2, 0, 3, 1)
    assert prompt.text == (
        "Think of all people in the United States (Texas, Houston). What percentage of them would choose each option "
        "of this survey question?\nRequest: How important is family in your life?\n1. Not very important\n"
        "2. Very important\n3. Not at all important\n4. Rather important\nFill in a percentage for every option "
        "(they must add up to 100%), in exactly this format:\n1. Not very important: __%\n2. Very important: __%\n"
        "3. Not at all important: __%\n4. Rather important: __%"
    )
