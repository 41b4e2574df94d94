"""Tests for simulator.parsing: hand-labelled cases, real SmolLM2 outputs, fuzzing, adversarial speed."""

from __future__ import annotations

import dataclasses
import json
import random
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from culturesim.simulator.runfolder import PARSER_STATUSES, Status
from culturesim.simulator.parsing import (
    MAX_PARSE_CHARS,
    PARSER_VERSION,
    ParseResult,
    first_sentence,
    has_ai_disclosure,
    parse_response,
    split_answer_explanation,
)

DATA = Path(__file__).parent / "data"
IMP = ["Not very important", "Very important", "Not at all important", "Rather important"]
ZH = ["不太重要", "非常重要", "一点也不重要", "比较重要"]
AGR = ["Agree strongly", "Agree", "Disagree", "Strongly disagree"]
MC = ["Good manners", "Independence", "Hard work", "Feeling of responsibility", "Imagination"]
S10 = [str(i) for i in range(1, 11)]


def _load(name: str) -> list[dict]:
    with open(DATA / name, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _parse_row(text: str, row: dict) -> ParseResult:
    scale = tuple(row["scale"]) if row.get("scale") else None
    return parse_response(text, row["options"], row["question_type"], scale, row.get("language", "en"))


def _assert_valid(res: ParseResult, n_options: int, question_type: str) -> None:
    assert isinstance(res, ParseResult)
    assert isinstance(res.status, Status)
    assert isinstance(res.ai_disclosure, bool)
    assert isinstance(res.method, str) and res.method
    assert isinstance(res.answer_text, str) and isinstance(res.explanation, str)
    assert all(isinstance(p, int) for p in res.positions)
    if res.status is Status.OK:
        assert res.positions, res
        assert list(res.positions) == sorted(set(res.positions))
        assert all(0 <= p < n_options for p in res.positions), res
        if question_type != "multiple_choice":
            assert len(res.positions) == 1, res
    else:
        assert res.positions == (), res


# --------------------------------------------------------------------------------------
# Hand-labelled cases
# --------------------------------------------------------------------------------------

LABELLED = _load("parser_labelled.jsonl")


def test_labelled_file_covers_the_required_kinds():
    assert len(LABELLED) >= 60
    statuses = {r["status"] for r in LABELLED}
    assert statuses == {s.value for s in PARSER_STATUSES}
    assert sum(r["language"] == "zh" for r in LABELLED) >= 10
    assert sum(r["question_type"] == "multiple_choice" for r in LABELLED) >= 5
    assert sum(r["question_type"] == "scale" for r in LABELLED) >= 8
    assert sum(r["ai_disclosure"] for r in LABELLED) >= 5


@pytest.mark.parametrize("row", LABELLED, ids=[f"{i}:{r['text'][:30]!r}" for i, r in enumerate(LABELLED)])
def test_labelled_case(row):
    res = _parse_row(row["text"], row)
    got = (res.status.value, list(res.positions), res.ai_disclosure)
    assert got == (row["status"], row["positions"], row["ai_disclosure"]), (row.get("note"), res)
    _assert_valid(res, len(row["options"]), row["question_type"])


# --------------------------------------------------------------------------------------
# Real SmolLM2-135M-Instruct outputs (tests/data/make_smollm2_corpus.py), labelled by hand
# --------------------------------------------------------------------------------------

CORPUS = _load("smollm2_outputs.jsonl")


def test_corpus_is_real_varied_and_fully_labelled():
    assert len(CORPUS) >= 60
    assert sum(r["language"] == "zh" for r in CORPUS) >= 10
    assert {r["question_type"] for r in CORPUS} == {"single_choice", "multiple_choice", "scale"}
    assert len({r["id"] for r in CORPUS}) == len(CORPUS)
    for r in CORPUS:
        assert r["raw_text"] and r["prompt"], r["id"]
        assert r["label_status"] in {s.value for s in PARSER_STATUSES}, r["id"]
        assert isinstance(r["label_positions"], list) and isinstance(r["label_ai_disclosure"], bool), r["id"]
        assert (r["label_status"] == "ok") == bool(r["label_positions"]), r["id"]


@pytest.mark.parametrize("row", CORPUS, ids=[r["id"] for r in CORPUS])
def test_corpus_output(row):
    res = _parse_row(row["raw_text"], row)
    got = (res.status.value, list(res.positions), res.ai_disclosure)
    want = (row["label_status"], row["label_positions"], row["label_ai_disclosure"])
    assert got == want, (row["label_note"], res)


# --------------------------------------------------------------------------------------
# Fuzzing: never raises, always a valid result
# --------------------------------------------------------------------------------------

_FRAGMENTS = [
    "Answer:", "answer is", "**Answer:**", "A:", "答案：", "答案:", "回答：", "Explanation:", "解释：", "Request:",
    "1.", "2)", "(3)", "[4]", "#5", "option 2", "choice 3", "the second option", "第二个", "7/10", "8 out of 10",
    "9分", "on a scale of 1 to 10", "1, 3 and 4", "1、3", "2 or 4", "99999999999999999999999", "0", "-1", "10",
    "Very important", "Not very important", "not", "Not at all important", "Rather important", "非常重要", "不太重要",
    "Agree", "Disagree", "Strongly disagree", "I agree", "I have never", "As an AI language model", "I am an AI",
    "I cannot answer", "作为一个AI语言模型", "我无法回答", "我是一个人工智能", "'Answer:'", "“答案：”",
    "**", "__", "***", "`", "#", "~~", "\n", "\n\n", " ", "\t", "?", "。", "！", ".", ",", ";", "：", "１２３",
    "\u200b", "\ufeff", "\u0301", "\u202e", "\x00", "\ud800", "\U0001F600", "ﬁ", "Ａｎｓｗｅｒ", "\u3000",
]
_QUESTION_SETUPS = [
    (IMP, "single_choice", None),
    (ZH, "single_choice", None),
    (AGR, "single_choice", None),
    (MC, "multiple_choice", None),
    (S10, "scale", (1, 10)),
    ([str(i) for i in range(0, 11)], "scale", (0, 10)),
    (["Yes", "No"], "single_choice", None),
    (["A", "B", "C"] * 4, "single_choice", None),  # duplicated and one-letter options
]


def _random_string(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.25:  # random code points, surrogates and controls included
        return "".join(chr(rng.randrange(0, 0x110000)) for _ in range(rng.randrange(0, 80)))
    if kind < 0.35:  # random bytes decoded leniently
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200))).decode("latin-1")
    if kind < 0.45:  # digits and separators
        return "".join(rng.choice("0123456789 .,/-()\n:") for _ in range(rng.randrange(0, 120)))
    if kind < 0.55:  # nested markdown around a label
        depth = rng.randrange(1, 30)
        mark = rng.choice(["*", "_", "**", "#", "`"])
        return mark * depth + "Answer:" + "*" * depth + " " + str(rng.randrange(-5, 50))
    if kind < 0.60:  # a huge number
        return "Answer: " + "".join(rng.choice("0123456789") for _ in range(rng.randrange(7, 5000)))
    # mixtures of meaningful fragments
    return rng.choice(["", " ", "\n"]).join(rng.choice(_FRAGMENTS) for _ in range(rng.randrange(1, 25)))


@pytest.mark.slow
def test_fuzz_ten_thousand_random_and_adversarial_strings():
    rng = random.Random(20250401)
    counts: dict[Status, int] = {}
    for _ in range(10_000):
        text = _random_string(rng)
        options, qtype, scale = rng.choice(_QUESTION_SETUPS)
        res = parse_response(text, options, qtype, scale)
        _assert_valid(res, len(options), qtype)
        counts[res.status] = counts.get(res.status, 0) + 1
        assert isinstance(split_answer_explanation(text), tuple)
        assert isinstance(first_sentence(text), str)
        assert isinstance(has_ai_disclosure(text), bool)
    # The fragments do reach every branch, not only "no_answer".
    assert set(counts) == set(PARSER_STATUSES), counts


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(), setup=st.sampled_from(_QUESTION_SETUPS))
def test_hypothesis_any_text(text, setup):
    options, qtype, scale = setup
    _assert_valid(parse_response(text, options, qtype, scale), len(options), qtype)


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.sampled_from(_FRAGMENTS) | st.text(max_size=8) | st.integers(-10, 10**30).map(str), max_size=30),
    setup=st.sampled_from(_QUESTION_SETUPS),
)
def test_hypothesis_fragment_soup(parts, setup):
    options, qtype, scale = setup
    _assert_valid(parse_response(" ".join(parts), options, qtype, scale), len(options), qtype)


def test_non_string_text_does_not_raise():
    for text in (None, b"Answer: 2", 2, 3.5, ["Answer: 2"]):
        _assert_valid(parse_response(text, IMP), len(IMP), "single_choice")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Adversarial speed: no catastrophic backtracking
# --------------------------------------------------------------------------------------

_ADVERSARIAL = {
    "letters": "a" * 1_000_000,
    "labels": "Answer: " * 130_000,
    "enumerators": "1. " * 340_000,
    "number_list": "Answer: " + "1, " * 340_000,
    "parens": "(" * 1_000_000,
    "stars": "**" * 500_000,
    "cjk": "非常重要" * 250_000,
    "negations": "not " * 250_000,
    "digits": "7" * 1_000_000,
    "option_repeats": "Very important " * 70_000,
    "echoed_lists": "1. Not very important 2. Very important " * 26_000,
    "newlines": "\n" * 1_000_000,
    "spaces_after_cue": "I would choose" + " " * 1_000_000,
    "option_spaces": "option" + "\t" * 1_000_000 + "x",
    "numbers_spaced": "1." + "1 " * 500_000,
    "i_spaces": ("I" + " " * 300) * 3_300,
    "range_spaces": ("从" + " " * 500) * 2_000,
    "texts_and_numbers": "2. " + "Very important 1 " * 60_000,
    "label_text_numbers": "Answer: " + "Rather important (1) " * 48_000,
}


@pytest.mark.parametrize("name", sorted(_ADVERSARIAL))
def test_one_megabyte_adversarial_input_is_fast(name):
    text = _ADVERSARIAL[name]
    assert len(text) >= 900_000
    for options, qtype, scale in (_QUESTION_SETUPS[0], _QUESTION_SETUPS[3], _QUESTION_SETUPS[4]):
        start = time.perf_counter()
        res = parse_response(text, options, qtype, scale)
        elapsed = time.perf_counter() - start
        _assert_valid(res, len(options), qtype)
        assert elapsed < 3.0, f"{name} {qtype}: {elapsed:.2f}s"


def test_only_the_first_max_parse_chars_are_read():
    late = "x" * MAX_PARSE_CHARS + "\nAnswer: 2"
    assert parse_response(late, IMP).status is Status.NO_ANSWER
    early = "Answer: 2\n" + "x" * 2_000_000
    assert parse_response(early, IMP).positions == (1,)


# --------------------------------------------------------------------------------------
# Public API details
# --------------------------------------------------------------------------------------


def test_public_types():
    assert PARSER_VERSION == "1.1"
    assert [s.value for s in PARSER_STATUSES] == ["ok", "no_answer", "invalid_option", "multiple_for_single",
                                                  "number_text_disagree", "refusal"]
    assert Status.OK == "ok"
    res = parse_response("Answer: 2. Very important\nExplanation: Family comes first. Always.", IMP)
    assert res == ParseResult(Status.OK, (1,), "answer_line_number", False, "2. Very important",
                              "Family comes first. Always.")
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.status = Status.NO_ANSWER  # type: ignore[misc]


@pytest.mark.parametrize(
    "text, method",
    [
        ("Answer: 2", "answer_line_number"),
        ("Answer: Very important", "answer_line_text"),
        ("2. Very important\nFamily.", "leading_number"),
        ("Very important.", "short_response"),
        ("I would choose option 2 for sure, it matters.", "cue_number"),
        ("Honestly family is very important to me and to my parents.", "option_text"),
        ("I cannot answer that.", "refusal"),
        ("Hello there, nice weather today.", "none"),
    ],
)
def test_methods_name_the_rule(text, method):
    assert parse_response(text, IMP).method == method


def test_bad_arguments_raise_value_error_naming_the_fix():
    with pytest.raises(ValueError, match="question_type='ranking'"):
        parse_response("Answer: 1", IMP, "ranking")
    with pytest.raises(ValueError, match="non-empty sequence"):
        parse_response("Answer: 1", [])
    with pytest.raises(ValueError, match="non-empty sequence"):
        parse_response("Answer: 1", "Very important")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(1, 10\)"):
        parse_response("Answer: 1", S10, "scale", (10, 1))


def test_explanation_before_the_answer():
    res = parse_response("Explanation: Religion is private.\nAnswer: 3", IMP)
    assert (res.positions, res.answer_text, res.explanation) == ((2,), "3", "Religion is private.")


def test_answer_and_explanation_texts_keep_the_original_characters():
    res = parse_response("答案：２，非常重要。\n解释：家庭，是我的根。", ZH, language="zh")
    assert res.status is Status.OK and res.positions == (1,)
    assert res.answer_text.startswith("２，非常重要")
    assert res.explanation == "家庭，是我的根。"


# --------------------------------------------------------------------------------------
# Memory-cleaning helpers
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Answer: 2. Very important\nExplanation: Family comes first. It always has.",
         ("2. Very important", "Family comes first. It always has.")),
        ("**Answer:** 3\n**Explanation:** Religion is private.", ("3", "Religion is private.")),
        ("Answer: 4 Explanation: short.", ("4", "short.")),
        ("答案：非常重要\n解释：家庭是根本。", ("非常重要", "家庭是根本。")),
        ("Family matters.\nExplanation: it does.", ("", "it does.")),
        ("Explanation: Religion is private.\nAnswer: 3", ("3", "Religion is private.")),
        ("No labels at all.", ("", "")),
        ("Tell me in the format 'Answer:' and explain using 'Explanation:'. Answer: 1", ("1", "")),
        ("", ("", "")),
    ],
)
def test_split_answer_explanation(text, expected):
    assert split_answer_explanation(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Family comes first. It always has.", "Family comes first."),
        ("Is it? Yes.", "Is it?"),
        ("Wow! Great.", "Wow!"),
        ("I live in the U.S. and love it. Second.", "I live in the U.S. and love it."),
        ("e.g. this one counts. Next.", "e.g. this one counts."),
        ("It costs 2.5 dollars. Next.", "It costs 2.5 dollars."),
        ("First line without a stop\nsecond line.", "First line without a stop"),
        ("家庭是根本。其次是工作。", "家庭是根本。"),
        ("真的吗？是的。", "真的吗？"),
        ("太好了！再见。", "太好了！"),
        ("No terminator at all", "No terminator at all"),
        ("  \n  Leading space. Next.", "Leading space."),
        ("", ""),
    ],
)
def test_first_sentence(text, expected):
    assert first_sentence(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("As an AI language model, I don't have opinions.", True),
        ("as an AI, I think so", True),
        ("I am an AI developed by a lab.", True),
        ("I'm just a language model.", True),
        ("As a large language model I cannot.", True),
        ("作为一个AI语言模型，我没有个人观点。", True),
        ("作为人工智能，我无法回答。", True),
        ("我是一个人工智能。", True),
        ("我只是一个语言模型", True),
        ("As an aide to the mayor, I know.", False),
        ("I am not an AI, I am a Texan.", False),
        ("I am an AI researcher in Houston.", False),
        ("Family is very important.", False),
        ("I said, \"Answer: 2\"", False),
        ("", False),
    ],
)
def test_has_ai_disclosure(text, expected):
    assert has_ai_disclosure(text) is expected


def test_issue_16_demo_cases_are_in_the_labelled_corpus():
    """The four cases found by hand in the README demo's 80 responses, with their statuses."""
    demo = [r for r in LABELLED if "(issue 16)" in r["note"]]
    assert sorted(r["status"] for r in demo) == ["no_answer", "number_text_disagree", "number_text_disagree", "ok"]
    for r in demo:
        res = _parse_row(r["text"], r)
        assert (res.status.value, list(res.positions)) == (r["status"], r["positions"]), r["note"]
    texts = {r["status"]: r["text"] for r in demo}
    assert "&2" in texts["no_answer"] and texts["ok"].startswith("I would say: Disagree.")
