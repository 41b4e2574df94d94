"""Prompts: the paper's template rendered exactly, languages, and shuffles that map back."""

from __future__ import annotations

import random

import pytest

import culturesim.simulator.prompts as prompts
from culturesim.simulator.parsing import parse_response
from culturesim.simulator.participants import load_locations
from culturesim.simulator.prompts import (
    PROMPT_VERSION,
    CAO_TEMPLATES,
    country_label,
    display_numbers,
    option_order,
    render_question,
)
from culturesim.simulator.questions import Question


def q(id="gss2022.cappun.en", question="Do you favor or oppose the death penalty for persons convicted of murder?",
      options=("Favor", "Oppose"), codes=(1, 2), qtype="single_choice", language="en", culture="US") -> Question:
    k = len(options)
    return Question(id=id, culture=culture, language=language, question=question, options=tuple(options),
                    option_codes=tuple(codes), question_type=qtype, ordinal=False,
                    human_distribution=tuple([1 / k] * k), human_n=100)


CAPPUN = q()
GOLDEN_EN = (
    "I want you to act as a citizen from the United States (Texas, Houston). You should obtain an answer from 2 "
    "choices. You should tell me the answer in the format 'Answer:' and explain afterward using 'Explanation:'. "
    "Request: Do you favor or oppose the death penalty for persons convicted of murder?\n1. Oppose\n2. Favor"
)
Q1_ZH = q("wvs7.CN.Q1.zh", "在您的生活中，家庭有多重要？", ("非常重要", "比较重要", "不太重要", "完全不重要"), (1, 2, 3, 4),
          language="zh", culture="CN")
GOLDEN_ZH = (
    "我希望你扮演一名来自中国（广东省，广州市）的公民。你需要从4个选项中选出一个答案。"
    "请按照“答案：”的格式告诉我答案，然后用“解释：”进行解释。请求：在您的生活中，家庭有多重要？\n"
    "1. 比较重要\n2. 非常重要\n3. 完全不重要\n4. 不太重要"
)
GOD = q("wvs7.US.Q164.en", "How important is God in your life?",
        ("Not at all important", "2", "3", "4", "5", "6", "7", "8", "9", "Very important"), tuple(range(1, 11)), "scale")


def test_english_template_golden_string_and_docstring():
    texas = next(loc for loc in load_locations("US") if loc.name() == "Texas")
    r = render_question(CAPPUN, "US", order=(1, 0), location=texas)
    assert r.text == GOLDEN_EN
    assert r.request == "Do you favor or oppose the death penalty for persons convicted of murder?\n1. Oppose\n2. Favor"
    assert r.language == "en" and r.options == ("Oppose", "Favor") and r.scale is None
    # The documented rendering is the real one (every line of it, indentation aside).
    doc_lines = [line.strip() for line in prompts.__doc__.splitlines()]
    for line in GOLDEN_EN.splitlines():
        assert line in doc_lines
    # Without a location the country stands alone.
    assert render_question(CAPPUN, "US").text.startswith("I want you to act as a citizen from the United States. ")
    assert isinstance(PROMPT_VERSION, str) and PROMPT_VERSION


def test_multiple_choice_says_one_or_more():
    mc = q("x.mc", "Which of these qualities are important for children?", ("Tolerance", "Thrift", "Obedience"),
           (1, 2, 3), "multiple_choice")
    assert "You should obtain one or more answers from 3 choices." in render_question(mc, "US").text
    mc_zh = q("x.mc.zh", "以下哪些品质对孩子很重要？", ("宽容", "节俭", "服从"), (1, 2, 3), "multiple_choice", "zh", "CN")
    assert "你需要从3个选项中选出一个或多个答案。" in render_question(mc_zh, "CN").text


def test_chinese_template_for_chinese_questions():
    guangdong = next(loc for loc in load_locations("CN") if loc.name() == "Guangdong")
    r = render_question(Q1_ZH, "CN", order=(1, 0, 3, 2), location=guangdong)
    assert r.text == GOLDEN_ZH
    assert r.language == "zh"
    # The English parallel of a Chinese question gets the English template and English place names.
    en = q("wvs7.CN.Q1.en", "How important is family in your life?", ("Very important", "Rather important",
           "Not very important", "Not at all important"), (1, 2, 3, 4), culture="CN")
    assert render_question(en, "CN", location=guangdong).text.startswith(
        "I want you to act as a citizen from China (Guangdong, Guangzhou). ")


def test_japanese_arabic_and_fallback_templates():
    jp = q("wvs7.JP.Q1.ja", "あなたの生活において家族はどのくらい重要ですか？", ("非常に重要", "やや重要"), (1, 2),
           language="ja", culture="JP")
    osaka = next(loc for loc in load_locations("JP") if loc.name() == "Osaka")
    text = render_question(jp, "JP", location=osaka).text
    assert text.startswith("あなたには日本（大阪府、大阪市）の市民として振る舞ってほしい。2個の選択肢から一つの答えを選んでください。")
    assert "「回答：」" in text and "「理由：」" in text
    eg = q("wvs7.EG.Q1.ar", "ما مدى أهمية الأسرة في حياتك؟", ("مهمة جدا", "مهمة إلى حد ما"), (1, 2), language="ar", culture="EG")
    text = render_question(eg, "EG").text
    assert text.startswith("أريدك أن تتصرف كمواطن من مصر.") and "'Answer:'" in text and "'Explanation:'" in text
    de = q("x.de", "Wie wichtig ist Ihnen die Familie?", ("Sehr wichtig", "Unwichtig"), (1, 2), language="de")
    r = render_question(de, "US")
    assert r.language == "en" and r.text.startswith("I want you to act as a citizen from the United States.")
    assert "Request: Wie wichtig ist Ihnen die Familie?\n1. Sehr wichtig\n2. Unwichtig" in r.text


def test_cao_template():
    r = render_question(CAPPUN, "US", order=(0, 1), templates=CAO_TEMPLATES)
    assert r.text.startswith("I want you to tell me the opinion of the average person from the United States. "
                             "You should obtain an answer that the average person from the United States would choose "
                             "from 2 choices.")
    assert r.text.endswith("Request: " + r.request)


def test_shuffle_is_seeded_and_maps_back_to_source_codes():
    question = q("gss2022.natspac.en", "Space exploration program: are we spending too much, too little, or about right?",
                 ("Too little", "About right", "Too much"), (1, 2, 3))
    seen = set()
    for participant in range(60):
        order = option_order(question, seed=4, participant_id=participant)
        expected = list(range(3))
        random.Random(f"4:{participant}:{question.id}").shuffle(expected)
        assert order == tuple(expected)
        seen.add(order)
        r = render_question(question, "US", order=order)
        for shown in range(3):
            assert r.options[shown] == question.options[order[shown]]
            # A parsed answer naming displayed number shown+1 maps back to its source option and code.
            parsed = parse_response(f"Answer: {shown + 1}", r.options, question.question_type, scale=r.scale)
            assert r.to_source(parsed.positions) == (order[shown],)
            assert r.to_codes(parsed.positions) == (question.option_codes[order[shown]],)
            assert f"\n{shown + 1}. {question.options[order[shown]]}" in r.text
    assert len(seen) == 6  # every permutation of three options occurs
    assert option_order(question, 4, 0, shuffle=False) == (0, 1, 2)


def test_numeric_scales_are_not_shuffled_and_keep_their_numbers():
    for participant in range(20):
        assert option_order(GOD, seed=1, participant_id=participant) == tuple(range(10))
    r = render_question(GOD, "US")
    assert r.scale == (1, 10)
    assert r.request.endswith("\n1. Not at all important\n2\n3\n4\n5\n6\n7\n8\n9\n10. Very important")
    parsed = parse_response("Answer: 7", r.options, "scale", scale=r.scale)
    assert r.to_codes(parsed.positions) == (7,)
    # A 0..10 scale shows 0..10, and "0" maps to code 0.
    zero = q("x.scale0", "Where would you place yourself?", ("Left", *map(str, range(1, 10)), "Right"),
             tuple(range(11)), "scale")
    numbers, scale = display_numbers(zero)
    assert numbers == tuple(range(11)) and scale == (0, 10)
    r0 = render_question(zero, "US")
    assert r0.request.endswith("\n0. Left\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10. Right")
    assert r0.to_codes(parse_response("Answer: 0", r0.options, "scale", scale=r0.scale).positions) == (0,)
    # Points that start with their number are shown as they are (GSS lifenow).
    life = q("gss2022.lifenow.en", "How would you rate your life today?",
             ("0 - worst possible state", *map(str, range(1, 10)), "10 - best possible state"), tuple(range(11)), "scale")
    assert render_question(life, "US").request == (
        "How would you rate your life today?\n0 - worst possible state\n1\n2\n3\n4\n5\n6\n7\n8\n9\n"
        "10 - best possible state")
    # Gaps in the codes: numbered 1..k like any question.
    gaps = q("x.gaps", "Number of coworker deaths", ("0", "1", "2", "20"), (0, 1, 2, 20), "scale")
    rg = render_question(gaps, "US")
    assert rg.scale == (1, 4) and rg.request.endswith("\n1. 0\n2. 1\n3. 2\n4. 20")
    assert rg.to_codes(parse_response("Answer: 4", rg.options, "scale", scale=rg.scale).positions) == (20,)
    with pytest.raises(ValueError, match="numeric scale"):
        render_question(GOD, "US", order=tuple(reversed(range(10))))


def test_bad_order_and_country_label():
    with pytest.raises(ValueError, match="permutation"):
        render_question(CAPPUN, "US", order=(0, 0))
    assert country_label("CN", "zh", "北京市") == "中国（北京市）"
    assert country_label("EG", "ar", "القاهرة") == "مصر (القاهرة)"
    assert country_label("XX") == "XX"
