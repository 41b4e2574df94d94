"""The DEF prompt, rendered exactly, with per-participant option shuffles that map back.

Why: the template is part of the method (the paper's wording), and every number we report
depends on it, so it is data here, versioned (``PROMPT_VERSION``, recorded in every run) and
documented with its exact rendering.

English template (the paper's, verbatim)::

    I want you to act as a citizen from [COUNTRY]. You should obtain an answer from [NUM]
    choices. You should tell me the answer in the format 'Answer:' and explain afterward
    using 'Explanation:'. Request: [QUESTION]

followed by the numbered options, one per line. Rendered for GSS ``cappun`` with the prompt
modification (a participant in Texas, Houston) whose shuffled order shows "Oppose" first::

    I want you to act as a citizen from the United States (Texas, Houston). You should obtain an answer from 2 choices. You should tell me the answer in the format 'Answer:' and explain afterward using 'Explanation:'. Request: Do you favor or oppose the death penalty for persons convicted of murder?
    1. Oppose
    2. Favor

Without the prompt modification [COUNTRY] is just ``the United States``. Multiple-choice
questions say ``You should obtain one or more answers from [NUM] choices.``

With personas drawn from real respondents (``simulate --personas respondents``,
``culturesim.simulator.personas``; English templates only) the person's sex and age group follow
the country: ``I want you to act as a citizen from the United States (Ohio, Columbus), a woman
aged 30 to 49. You should ...``; runs without personas render exactly as above.

Other languages (chosen by the question's ``language``):

- ``zh`` (our faithful Chinese version of the same sentences)::

    我希望你扮演一名来自[国家]的公民。你需要从[数量]个选项中选出一个答案。请按照“答案：”的格式告诉我答案，然后用“解释：”进行解释。请求：[问题]

  with the location as ``中国（广东省，广州市）``; multiple choice: ``选出一个或多个答案``.
- ``ja``: a faithful Japanese version; the explanation label is ``理由：`` (reason) rather
  than ``説明：`` because the parser reads the labels 回答/理由 but not 説明.
- ``ar``: a faithful Arabic version that keeps the two labels ``'Answer:'`` and
  ``'Explanation:'`` in Latin script, since the parser reads English and Chinese labels only.
- any other language: the English template with the question in its own language.

Option order: shuffled per participant with ``random.Random(f"{seed}:{participant}:{question_id}")``
so answer position bias averages out; ``RenderedQuestion.order[i]`` is the source index of
displayed option ``i``, and ``to_source`` maps parsed positions back. Numeric scales
(``question_type == "scale"``: numbered points, words only at the ends) are never shuffled:
their numbers carry the meaning. A scale whose bare-number options equal their consecutive
source codes is displayed with those numbers (GSS ``lifenow``: ``0 - worst possible state``,
``1``, ..., ``10 - best possible state``; a point that starts with its number is shown as
it is); a scale with gaps in its codes (GSS ``brv5cowknum``: 0..8, 20) is numbered 1..k
like any other question (``1. 0``, ..., ``10. 20``), since the parser reads contiguous
scales only.

Label styles (``labels=``, for the invariance battery; ``culturesim.simulator.labels``): ``numbers`` is the
template's; ``letters`` shows ``A. Oppose`` / ``B. Favor`` and ``RenderedQuestion.parser_text``
turns a letter answer into the number the parser reads; ``text`` lists the bare option texts.
Numeric scales keep their numbers in every style.

The Cao et al. (2023) baseline template asks for the choice of the *average* person (see
``CAO_TEMPLATES``); the CCSV baseline's critique, revision and vote prompts live in
``culturesim.simulator.baselines``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Sequence

from culturesim.simulator.labels import LABEL_STYLES, check_label_style, letter, letters_to_numbers
from culturesim.simulator.participants import Location, country_name
from culturesim.simulator.questions import Question

__all__ = [
    "CAO_TEMPLATES",
    "DEF_TEMPLATES",
    "LABEL_STYLES",
    "PROMPT_VERSION",
    "RenderedQuestion",
    "answer_labels",
    "country_label",
    "display_numbers",
    "option_order",
    "render_question",
    "template_language",
]

PROMPT_VERSION = "1.0"
"""Bump whenever a rendered prompt changes; recorded in every run's config.json."""

# {country} {num} {choose} {question}; {choose} is the single/multiple phrase.
DEF_TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "template": (
            "I want you to act as a citizen from {country}. You should obtain {choose} from {num} choices. "
            "You should tell me the answer in the format 'Answer:' and explain afterward using 'Explanation:'. "
            "Request: {request}"
        ),
        "single": "an answer",
        "multiple": "one or more answers",
    },
    "zh": {
        "template": (
            "我希望你扮演一名来自{country}的公民。你需要从{num}个选项中选出{choose}。"
            "请按照“答案：”的格式告诉我答案，然后用“解释：”进行解释。请求：{request}"
        ),
        "single": "一个答案",
        "multiple": "一个或多个答案",
    },
    "ja": {
        "template": (
            "あなたには{country}の市民として振る舞ってほしい。{num}個の選択肢から{choose}を選んでください。"
            "「回答：」の形式で答えを述べ、その後「理由：」を使って説明してください。リクエスト：{request}"
        ),
        "single": "一つの答え",
        "multiple": "一つ以上の答え",
    },
    "ar": {
        "template": (
            "أريدك أن تتصرف كمواطن من {country}. يجب أن تختار {choose} من بين {num} خيارات. "
            "يجب أن تخبرني بالإجابة بالصيغة 'Answer:' ثم تشرح بعد ذلك باستخدام 'Explanation:'. "
            "الطلب: {request}"
        ),
        "single": "إجابة واحدة",
        "multiple": "إجابة واحدة أو أكثر",
    },
}

CAO_TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "template": (
            "I want you to tell me the opinion of the average person from {country}. You should obtain {choose} "
            "that the average person from {country} would choose from {num} choices. "
            "You should tell me the answer in the format 'Answer:' and explain afterward using 'Explanation:'. "
            "Request: {request}"
        ),
        "single": "an answer",
        "multiple": "one or more answers",
    },
    "zh": {
        "template": (
            "我希望你告诉我来自{country}的普通人的观点。你需要从{num}个选项中选出来自{country}的普通人会选择的{choose}。"
            "请按照“答案：”的格式告诉我答案，然后用“解释：”进行解释。请求：{request}"
        ),
        "single": "一个答案",
        "multiple": "一个或多个答案",
    },
}

# Labels a memory entry is rewritten with, per template language (what the prompt asked for).
_LABELS = {"en": ("Answer:", "Explanation:"), "zh": ("答案：", "解释："), "ja": ("回答：", "理由："),
           "ar": ("Answer:", "Explanation:")}
# The location in parentheses after the country name.
_PARENS = {"zh": ("（", "）"), "ja": ("（", "）")}


def template_language(language: str, templates: dict[str, dict[str, str]] = DEF_TEMPLATES) -> str:
    """The template used for a question in ``language``: its own where we have one, else English."""
    return language if language in templates else "en"


def answer_labels(language: str) -> tuple[str, str]:
    """The ('Answer:', 'Explanation:') labels the template of ``language`` asks for."""
    return _LABELS.get(template_language(language), _LABELS["en"])


def country_label(country: str, language: str = "en", location: str | None = None) -> str:
    """``the United States``, ``the United States (Texas, Houston)``, ``中国（广东省，广州市）``."""
    name = country_name(country, language)
    if not location:
        return name
    left, right = _PARENS.get(language, (" (", ")"))
    return f"{name}{left}{location}{right}"


def display_numbers(question: Question) -> tuple[tuple[int, ...], tuple[int, int] | None]:
    """Numbers shown before the options (in source order) and the parser's ``scale``.

    A numeric scale whose bare-number options equal their (consecutive) source codes keeps
    those numbers (e.g. 0..10) and gets ``scale=(lo, hi)``; every other question is numbered
    1..k (a scale numbered 1..k gets ``scale=(1, k)``).
    """
    k = question.num_options
    if question.question_type == "scale":
        codes = question.option_codes
        consecutive = all(b - a == 1 for a, b in zip(codes, codes[1:]))
        bare_match = all(o.strip() == str(c) for o, c in zip(question.options, codes) if o.strip().isdigit())
        if consecutive and bare_match:
            return tuple(codes), (codes[0], codes[-1])
        return tuple(range(1, k + 1)), (1, k)
    return tuple(range(1, k + 1)), None


def option_order(question: Question, seed: int, participant_id: int, shuffle: bool = True) -> tuple[int, ...]:
    """Source indices in the order participant ``participant_id`` sees them.

    Shuffled with ``random.Random(f"{seed}:{participant_id}:{question.id}")``; numeric scales
    (and ``shuffle=False``) keep the source order.
    """
    order = list(range(question.num_options))
    if shuffle and question.question_type != "scale":
        random.Random(f"{seed}:{participant_id}:{question.id}").shuffle(order)
    return tuple(order)


@dataclass(frozen=True)
class RenderedQuestion:
    """A question as one participant sees it, and the way back to the source's options."""

    question_id: str
    language: str
    """The template's language (``en`` when the question's language has no template)."""
    text: str
    """The full user message."""
    request: str
    """The request part (question and numbered options): what memory keeps of the query."""
    order: tuple[int, ...]
    """``order[i]`` = source index of the option displayed at position ``i``."""
    options: tuple[str, ...]
    """Option texts in displayed order (what the parser gets)."""
    numbers: tuple[int, ...]
    """The number shown before each displayed option."""
    scale: tuple[int, int] | None
    """The parser's ``scale`` argument (numeric scales only)."""
    question_type: str
    option_codes: tuple[int, ...]
    """The source's codes, in source order."""
    labels: str = "numbers"
    """How the options were labelled: ``numbers`` (the template's), ``letters`` or ``text`` (see ``culturesim.simulator.labels``)."""
    variant: str | None = None
    """The id of the paraphrase shown instead of the source's wording (None: the source's)."""

    def parser_text(self, text: str) -> str:
        """The response as the parser should read it: letter labels become their numbers."""
        return letters_to_numbers(text, len(self.options)) if self.labels == "letters" else text

    def to_source(self, positions: Sequence[int]) -> tuple[int, ...]:
        """Displayed positions -> source option indices (sorted)."""
        return tuple(sorted(self.order[p] for p in positions))

    def to_codes(self, positions: Sequence[int]) -> tuple[int, ...]:
        """Displayed positions -> the source's option codes (in source order)."""
        return tuple(self.option_codes[i] for i in self.to_source(positions))


def _option_line(number: int, text: str, scale: bool, labels: str = "numbers") -> str:
    """``2. Agree`` (``B. Agree`` with letters, ``Agree`` bare); on a numeric scale a point
    that already starts with its number is shown as it is (``2``, ``1 - lower``, ``7 or more``)."""
    text = text.strip()
    if labels == "letters":
        return f"{letter(number - 1)}. {text}"
    if labels == "text":
        return text
    if text == str(number) or (scale and re.match(rf"{number}(?!\d)", text)):
        return text
    return f"{number}. {text}"


def render_question(
    question: Question,
    country: str,
    order: Sequence[int] | None = None,
    location: Location | str | None = None,
    templates: dict[str, dict[str, str]] = DEF_TEMPLATES,
    labels: str = "numbers",
    demographics: str | None = None,
) -> RenderedQuestion:
    """Render ``question`` for a participant of ``country`` (optionally at ``location``,
    labelled in the template's language) with options displayed in ``order`` and labelled
    in style ``labels`` (``numbers``, ``letters`` or ``text``; numeric scales keep numbers).
    ``demographics`` (``a woman aged 30 to 49``, English templates only) follows the country."""
    check_label_style(labels)
    k = question.num_options
    order = tuple(range(k)) if order is None else tuple(order)
    if sorted(order) != list(range(k)):
        raise ValueError(f"order={order!r} must be a permutation of 0..{k - 1} for question {question.id!r}")
    language = template_language(question.language, templates)
    spec = templates[language]
    numbers_src, scale = display_numbers(question)
    if scale is not None and order != tuple(range(k)):
        raise ValueError(f"Question {question.id!r} is a numeric scale; its options must not be shuffled")
    if scale is not None and labels != "numbers":
        raise ValueError(f"Question {question.id!r} is a numeric scale; its numbers are its options (labels={labels!r} "
                         "applies to the other questions only)")
    numbers = tuple(numbers_src) if scale is not None else tuple(range(1, k + 1))
    options = tuple(question.options[i] for i in order)
    lines = "\n".join(_option_line(n, o, scale is not None, labels) for n, o in zip(numbers, options))
    # A question put to a sub-population says who is asked first (dataset 3.0 ``universe``), in the
    # request itself so the memory, the baselines and every template carry it.
    stem = f"{question.universe.strip()} {question.question.strip()}" if question.universe else question.question.strip()
    request = f"{stem}\n{lines}"
    choose = spec["multiple"] if question.question_type == "multiple_choice" else spec["single"]
    place = location.label(language) if isinstance(location, Location) else location
    who = country_label(country, language, place)
    if demographics:
        if language != "en":
            raise ValueError(f"Question {question.id!r} uses the {language!r} template; the demographic phrase "
                             f"{demographics!r} is English (ask the English questions, or run without personas)")
        who = f"{who}, {demographics}"
    text = spec["template"].format(country=who, num=k, choose=choose, request=request)
    return RenderedQuestion(
        question_id=question.id,
        language=language,
        text=text,
        request=request,
        order=order,
        options=options,
        numbers=numbers,
        scale=scale,
        question_type=question.question_type,
        option_codes=question.option_codes,
        labels=labels,
    )
