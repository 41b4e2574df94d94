"""The verbalized estimator: the model states what share of the population picks each option.

Why: sampling and option log-probabilities read the distribution a model *produces*; asking
it for the distribution, in words, reads what it *states* it knows (Meister et al. 2024,
"Benchmarking Distributional Alignment of Large Language Models", found this beats
log-probabilities for instruction-tuned models). The gap between the two is the report's
knowledge-to-simulation gap.

English prompt (``VERBALIZED_TEMPLATES["en"]``), rendered for GSS ``cappun`` with the options
in the participant's shuffled order::

    Think of all people in the United States. What percentage of them would choose each option of this survey question?
    Request: Do you favor or oppose the death penalty for persons convicted of murder?
    1. Oppose
    2. Favor
    Fill in a percentage for every option (they must add up to 100%), in exactly this format:
    1. Oppose: __%
    2. Favor: __%

With the prompt modification the country carries the participant's location
(``the United States (Texas, Houston)``); Chinese questions get a faithful Chinese version,
other languages the English instructions around the native question. The request part
(question and numbered options, numeric scales numbered by their codes) is
``culturesim.simulator.prompts.render_question``'s, so the options read exactly as in a DEF run.

Parser (``parse_verbalized``, never raises, bounded time): lines ``<label>. <text>: <p>%``,
``<label>: <p>%``, ``<label>) <text> - <p> percent`` or ``<option text>: <p>%`` (full-width
forms folded first; the ``%`` may be left out at the end of a line). Reading stops once
every option has a share. Statuses are the answer parser's:

- ``ok``: every option has exactly one share in [0, 100] and they do not all equal 0; the
  distribution is the shares renormalised, and ``raw_sum`` keeps what they added up to
  (small models rarely make them add up to 100);
- ``no_answer``: no share, or shares for only some options (``detail`` says which);
- ``invalid_option``: a label outside the displayed ones, a share above 100, or a line whose
  option text names another option than its label;
- ``multiple_for_single``: one option given two different shares;
- ``refusal``: no share, and the answer parser reads a refusal or AI self-disclosure.

For multiple-choice questions the shares are renormalised like the rest, so they read as the
share of mentions, which is how the metric weights a participant's several answers.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Sequence

from culturesim.simulator.parsing import has_ai_disclosure, parse_response
from culturesim.simulator.prompts import RenderedQuestion, country_label, render_question, template_language
from culturesim.simulator.questions import Question
from culturesim.simulator.runfolder import Status

__all__ = [
    "VERBALIZED_TEMPLATES",
    "VERBALIZED_VERSION",
    "VerbalizedParse",
    "VerbalizedPrompt",
    "parse_verbalized",
    "render_verbalized",
]

VERBALIZED_VERSION = "verbalized-1"
"""Bump whenever the prompt or the parser changes; recorded in every verbalized run."""

MAX_CHARS = 8_000
"""Only this many leading characters are read (bounded time on any input)."""

VERBALIZED_TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "template": (
            "Think of all people in {country}. What percentage of them would choose each option of this survey "
            "question?\nRequest: {request}\nFill in a percentage for every option (they must add up to 100%), in "
            "exactly this format:\n{blanks}"
        ),
        "blank": "{number}. {option}: __%",
    },
    "zh": {
        "template": (
            "请想一想{country}的所有人。在这道调查题中，选择每个选项的人各占百分之多少？\n请求：{request}\n"
            "请为每个选项填写一个百分比（合计必须为100%），严格使用以下格式：\n{blanks}"
        ),
        "blank": "{number}. {option}：__%",
    },
}


@dataclass(frozen=True)
class VerbalizedPrompt:
    """The verbalized question as one participant sees it (``rendered`` maps positions back)."""

    text: str
    rendered: RenderedQuestion


def render_verbalized(
    question: Question, country: str, order: Sequence[int] | None = None, location: object = None
) -> VerbalizedPrompt:
    """The verbalized prompt for ``question`` with options displayed in ``order``."""
    rendered = render_question(question, country, order, location)  # the DEF request part and numbering
    language = template_language(question.language, VERBALIZED_TEMPLATES)
    spec = VERBALIZED_TEMPLATES[language]
    place = location.label(language) if hasattr(location, "label") else location
    blanks = "\n".join(spec["blank"].format(number=n, option=o.strip()) for n, o in zip(rendered.numbers, rendered.options))
    text = spec["template"].format(country=country_label(country, language, place), request=rendered.request, blanks=blanks)
    return VerbalizedPrompt(text, rendered)


@dataclass(frozen=True)
class VerbalizedParse:
    """What a verbalized reply says, in DISPLAYED positions."""

    status: str
    """``ok``, ``no_answer``, ``invalid_option``, ``multiple_for_single`` or ``refusal``."""
    shares: tuple[float | None, ...]
    """The stated percentage per displayed option (None: not given)."""
    distribution: tuple[float, ...] | None
    """The shares renormalised to sum to 1 (ok only)."""
    raw_sum: float | None
    """What the stated shares added up to (None: no share)."""
    detail: str = ""
    ai_disclosure: bool = False


_NUM = r"(?P<pct>\d{1,3}(?:[.,]\d{1,4})?)"
_END = r"\s*(?:%|percent\b|per\s*cent\b|(?=\s*$))"
_LABELLED = re.compile(
    r"^[ \t>*•\-]*(?:option[ \t]+)?(?P<label>\d{1,3})[ \t]*(?:[.)\]][ \t]*(?P<text>[^\n]{0,300}?)[ \t]*[:=–—-]|[:=–—-])"
    r"[ \t*]*" + _NUM + _END,
    re.IGNORECASE | re.MULTILINE,
)
_UNLABELLED = re.compile(r"^[ \t>*•\-]*(?P<text>[^\n:=]{1,300}?)[ \t]*[:=–—-][ \t*]*" + _NUM + _END,
                         re.IGNORECASE | re.MULTILINE)


def _norm(text: str) -> str:
    return re.sub(r"[\s\"'*_`“”‘’]+", " ", text).strip(" .,;").casefold()


def parse_verbalized(
    text: object, options: Sequence[str], numbers: Sequence[int] | None = None, language: str = "en"
) -> VerbalizedParse:
    """Read the stated shares of ``options`` (displayed order, labelled ``numbers``, default
    1..k) from ``text``; any input gives a result, nothing raises."""
    options = tuple(str(o) for o in options)
    k = len(options)
    numbers = tuple(numbers) if numbers is not None else tuple(range(1, k + 1))
    raw = text if isinstance(text, str) else ("" if text is None else str(text))
    t = unicodedata.normalize("NFKC", raw[:MAX_CHARS]).replace("\r", "")
    disclosure = has_ai_disclosure(t)
    by_label = {str(n): i for i, n in enumerate(numbers)}
    by_text = {_norm(o): i for i, o in enumerate(options)}
    shares: list[float | None] = [None] * k
    problems: list[tuple[str, str]] = []  # (status, detail), first wins

    def take(position: int, value: float, where: str) -> None:
        if value > 100:
            problems.append(("invalid_option", f"share {value:g}% above 100 ({where})"))
        elif shares[position] is None:
            shares[position] = value
        elif shares[position] != value:
            problems.append(("multiple_for_single", f"option {numbers[position]} given {shares[position]:g}% and {value:g}%"))

    matches = sorted([(m.start(), "label", m) for m in _LABELLED.finditer(t)]
                     + [(m.start(), "text", m) for m in _UNLABELLED.finditer(t)], key=lambda x: x[0])
    seen_lines: set[int] = set()
    for start, kind, m in matches:
        if all(s is not None for s in shares) or problems:
            break
        if start in seen_lines:
            continue  # a labelled line also matches the unlabelled form
        value = float(m.group("pct").replace(",", "."))
        if kind == "label":
            seen_lines.add(start)
            label = str(int(m.group("label")))
            if label not in by_label:
                problems.append(("invalid_option", f"label {label} is not one of {list(numbers)}"))
                continue
            position = by_label[label]
            named = by_text.get(_norm(m.group("text") or ""))
            if named is not None and named != position:
                problems.append(("invalid_option", f"line labelled {label} names option {numbers[named]} ({options[named]!r})"))
                continue
            take(position, value, f"option {label}")
        else:
            position = by_text.get(_norm(m.group("text")))
            if position is not None:
                seen_lines.add(start)
                take(position, value, repr(options[position]))
    given = [s for s in shares if s is not None]
    raw_sum = float(sum(given)) if given else None
    if problems:
        status, detail = problems[0]
        return VerbalizedParse(status, tuple(shares), None, raw_sum, detail, disclosure)
    if not given:
        refused = parse_response(raw, options, "single_choice").status == Status.REFUSAL
        return VerbalizedParse(Status.REFUSAL if refused else Status.NO_ANSWER, tuple(shares), None, None,
                               "no percentage for any option", disclosure)
    if len(given) < k:
        missing = [numbers[i] for i, s in enumerate(shares) if s is None]
        return VerbalizedParse(Status.NO_ANSWER, tuple(shares), None, raw_sum,
                               f"shares for {len(given)} of {k} options (missing {missing})", disclosure)
    if raw_sum == 0:
        return VerbalizedParse(Status.NO_ANSWER, tuple(shares), None, raw_sum, "every share is 0%", disclosure)
    return VerbalizedParse(Status.OK, tuple(shares), tuple(s / raw_sum for s in shares), raw_sum, "", disclosure)
