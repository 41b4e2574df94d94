"""Turn a model's raw survey answer into the displayed option position(s) it chose.

Why this module exists: the DEF method counts answers, so every miscount biases the model's
distribution. Models (small ones above all) ignore the requested ``Answer:`` format, echo the
option list, copy a number from an earlier answer next to a different option text,
contradict themselves, or refuse. The parser therefore prefers precision to recall: it
accepts an answer only where the text names one clearly, and otherwise says *why* it did
not (``no_answer``, ``invalid_option``, ``multiple_for_single``, ``number_text_disagree``,
``refusal``), so those rows
are counted and reported rather than silently guessed. The rules below were fitted on real
SmolLM2-135M outputs (tests/data/smollm2_outputs.jsonl, hand-labelled).

It works in DISPLAYED positions (0-based, in the order the options were shown, numbered
1..k); mapping back to the source's option codes is the caller's job.

Precedence (the first rule that yields something wins):

1. **Answer label.** ``Answer:``, ``**Answer:**``, ``The answer is``, ``My answer would be:``,
   ``Answer -``, ``My choice is``, ``答案：``, ``回答：``, ``答：`` (full-width forms are folded
   first); ``A:`` at the start of a line only when no other label exists. A label in quotes (an echoed "in the
   format 'Answer:'") is ignored; only the first ``MAX_LABELS`` labels are read. The text
   after a label, up to the ``Explanation:``/``解释：`` label, the next label or a blank line,
   and (single choice / scale) the end of its first sentence, is resolved:

   - an echo of the option list ("1. Favor 2. Oppose"), or (single choice) the start of a
     numbered list, is no answer;
   - a *leading number* ("2", "2.", "(2)", "[2]", "#2", "option 2", "the second option",
     "Two", "第二个") decides, with a list for several ("1, 3 and 4", "1、3", one per line;
     "All of them"/"以上都是" for multiple choice).
     Its attached option text must agree: "4. Not very important" where 4 is "Rather
     important" names two options (``number_text_disagree``, for every question type), and
     so does a different option named later in the same sentence ("4, which is 'Not at all
     important'");
   - otherwise option texts (case-insensitive; where options overlap the longest match wins,
     so "Not very important" is never read as "Very important"), then numbers ("I'd go with
     option 3"); for scales numbers come first ("7", "7/10", "7 out of 10", "8分"; the range
     "1 to 10" and denominators are not answers). An immediately negated reference ("not 1")
     is skipped; a number attached to a text ("Rather important (1)") must agree
     (else ``number_text_disagree``).

   A label whose first sentence names nothing is read on to the end of its line, never
   past it ("Answer: The Honorable Carlos Herrera\nChat id: ... &2" is no answer). A leading
   number followed by a short option-like label that shares no word with the option it
   numbers ("Answer: 4. Not very important" where 4 is "Seeing that people have more say
   ...", copied from an earlier question in memory) is ``number_text_disagree``.

   The first label that resolves wins. For single choice, later labels before the
   explanation and before a hallucinated next turn ("Request: ...", "I want you to act as")
   must agree, else ``multiple_for_single``.
2. **Refusal or AI self-disclosure without a labelled answer** -> ``refusal``.
3. **Free text**: first the part before ``Explanation:``, then the whole text. A response that
   lists the options (two items echoed with their numbers, two lines starting with different
   numbers, three inline enumerators) is a discussion: its items are blanked and rules a, b
   and d are skipped.
   a. a first line that starts with a number ("2. Very important") is read as an answer line;
   b. a short response (up to 4 words: "Very important.", "Yes, I agree.") likewise;
   c. cue numbers: "option 2", "I choose 3", "I'd rate it 7", "8/10" (scale top only),
      "我选择2", "7分" (scales);
   d. option texts in prose: specific options (two or more words, or three or more CJK
      characters) anywhere; one-word options ("agree", "never", "同意") only in a first-person
      statement ("I agree", "I have never", "I would say: Disagree.", "我是同意"); never when negated ("not ...",
      "... is not a valid option") or inside a question.

Statuses: one distinct option -> ``ok`` (any number for ``multiple_choice``); several for a
single-choice or scale question -> ``multiple_for_single``; a number and an option text in
the same answer that name different options ("1. No" where 1 is "Yes", typically a number
copied from an earlier answer in memory) -> ``number_text_disagree`` (parser 1.0 called this
``multiple_for_single`` too; readers accept both); a number outside 1..k (or the scale) ->
``invalid_option``; nothing usable -> ``no_answer``. ``ai_disclosure`` is reported
whenever a self-disclosure appears, answer or not.

Known limits: paraphrases ("I'm proud" for "Very proud"), semantic negation beyond a few
words, and answers after the first ``MAX_PARSE_CHARS`` characters are not read.

Safety: regexes are precompiled (option patterns cached per option tuple) and written
without nested unbounded quantifiers; numbers longer than 6 digits are never converted; only
the first ``MAX_PARSE_CHARS`` characters are read (the DEF budget is 512 new tokens, a few
thousand characters). Any string parses in bounded time and nothing raises on text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from culturesim.simulator.runfolder import Status

__all__ = [
    "PARSER_VERSION",
    "MAX_PARSE_CHARS",
    "MAX_LABELS",
    "ParseResult",
    "parse_response",
    "split_answer_explanation",
    "first_sentence",
    "has_ai_disclosure",
]

PARSER_VERSION = "1.1"
"""Bump whenever the mapping from text to status/positions changes; recorded in every run."""

MAX_PARSE_CHARS = 32_000
"""Only this many leading characters of a response are read (bounded time on any input)."""

MAX_LABELS = 16
"""Only the first this many ``Answer:`` labels are considered (a model repeating the label is looping)."""

QUESTION_TYPES = ("single_choice", "multiple_choice", "scale")


@dataclass(frozen=True)
class ParseResult:
    status: Status
    """What the parser concluded: one of ``PARSER_STATUSES`` (``culturesim.simulator.runfolder``)."""
    positions: tuple[int, ...] = ()
    """0-based DISPLAYED positions chosen, sorted; empty unless ``status`` is OK."""
    method: str = "none"
    """Which rule found it, e.g. ``answer_line_number``, ``answer_line_text``, ``leading_number``,
    ``short_response``, ``cue_number``, ``option_text``, ``refusal``, ``none``."""
    ai_disclosure: bool = False
    """The text contains an AI self-disclosure ("As an AI language model", "我是一个人工智能"),
    answer or not."""
    answer_text: str = ""
    """The text after the ``Answer:`` label that was used (or the first label's), else empty."""
    explanation: str = ""
    """The text after the ``Explanation:`` label, else empty."""


# --------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------

# One character for one character, so offsets in the translated text are offsets in the raw
# text: full-width ASCII (ＡＢ１２：) -> ASCII, ideographic/no-break spaces -> space.
_WIDTH_TABLE = {0xFF01 + i: 0x21 + i for i in range(94)}
_WIDTH_TABLE.update({0x3000: 0x20, 0x00A0: 0x20, 0x2007: 0x20, 0x202F: 0x20, 0x2019: 0x27, 0x2018: 0x27})

_ZERO_WIDTH_RE = re.compile(r"[\u00ad\u200b-\u200f\u2028\u2029\u2060-\u2064\ufeff]")
_MARKDOWN_RE = re.compile(r"[*`#~]+|_{2,}")
_SPACES_RE = re.compile(r"[ \t\r\f\v]+")


def _width(text: str) -> str:
    return text.translate(_WIDTH_TABLE)


def _clean(text: str) -> str:
    """NFKC, no zero-width characters or markdown emphasis, single spaces (offsets not kept)."""
    text = unicodedata.normalize("NFKC", text)
    text = _ZERO_WIDTH_RE.sub("", text)
    text = _MARKDOWN_RE.sub("", text)
    return _SPACES_RE.sub(" ", text)


def _safe_text(text: object) -> str:
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    # Lone surrogates cannot be encoded; replace them so later steps see a well-formed str.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    text = text.replace("\x00", " ")
    return text[:MAX_PARSE_CHARS]


# --------------------------------------------------------------------------------------
# Labels, refusals, disclosures
# --------------------------------------------------------------------------------------

_QUOTES_OPEN = "'\"“‘「『《<"
_QUOTES_CLOSE = "'\"”’」』》>"

_ANSWER_LABEL_RE = re.compile(
    r"(?<![A-Za-z])(?:(?:my|the|final|your|correct|best)[ \t]+){0,2}answers?[ \t*_]*"
    r"(?:\([^()\n]{0,20}\)[ \t*_]*)?"
    r"(?::|[-–—=](?=[ \t]+[\w(\[\"'“]|[ \t]*\d)"
    r"|\bis\b[ \t]*:?|\bwould[ \t]+be\b[ \t]*:?|\bwill[ \t]+be\b[ \t]*:?)"
    r"|(?<![A-Za-z])(?:my|final)[ \t]+(?:choice|selection)[ \t*_]*(?::|\bis\b[ \t]*:?|\bwould[ \t]+be\b[ \t]*:?)"
    r"|(?:最终|我的)?(?:答案|回答|选择)[ \t*_]*(?::|是|为)"
    r"|(?<![问回])答[ \t*_]*:",
    re.IGNORECASE,
)
_SHORT_LABEL_RE = re.compile(r"(?m)^[ \t>*_#-]*A[ \t*_]*:")
_EXPLANATION_LABEL_RE = re.compile(
    r"(?<![A-Za-z])(?:explanations?|explain|reasons?|reasoning|rationale|justification)[ \t*_]*:"
    r"|(?<![\u4e00-\u9fff])(?:解释|理由|原因|说明|解析)[ \t*_]*:",
    re.IGNORECASE,
)

_AI_DISCLOSURE_RE = re.compile(
    r"\bas[ \t]+an?[ \t]+(?:ai|a\.i\.|artificial[ \t]+intelligence)\b"
    r"|\bas[ \t]+an?[ \t]+(?:large[ \t]+)?language[ \t]+model\b"
    r"|\bai[ \t]+language[ \t]+model\b"
    r"|\b(?:i[ \t]+am|i'm|i[ \t]+m|this[ \t]+is)[ \t]+"
    r"(?:just[ \t]+|only[ \t]+|merely[ \t]+|not[ \t]+a[ \t]+human[, \t]+but[ \t]+)?"
    r"(?:an?[ \t]+)?(?:(?!not\b|no\b|never\b)[\w-]+[ \t]+){0,2}?"
    r"(?:ai|artificial[ \t]+intelligence|(?:large[ \t]+)?language[ \t]+model|chatbot|virtual[ \t]+assistant|"
    r"ai[ \t]+assistant)\b(?![ \t]+(?:researcher|engineer|enthusiast|expert|scientist|fan|developer))"
    r"|作为(?:一[个名])?(?:AI|人工智能|语言模型|AI语言模型|人工智能语言模型|智能助手|聊天机器人)"
    r"|我(?:只)?是(?:一[个名])?(?:AI|人工智能|语言模型|AI语言模型|人工智能语言模型|智能助手|聊天机器人)",
    re.IGNORECASE,
)

_REFUSAL_RE = re.compile(
    r"\b(?:i|we)[ \t]*(?:cannot|can[ \t]?not|can't|can['’]t|am[ \t]+unable[ \t]+to|'m[ \t]+unable[ \t]+to|"
    r"am[ \t]+not[ \t]+able[ \t]+to|'m[ \t]+not[ \t]+able[ \t]+to|won't|will[ \t]+not|must[ \t]+decline[ \t]+to|"
    r"decline[ \t]+to|refuse[ \t]+to)[ \t]+(?:personally[ \t]+)?"
    r"(?:answer|provide|give|share|express|choose|select|pick|offer|state|make|take|respond|have|hold|form|"
    r"participate|comply|fulfill|role[- ]?play|act|pretend|answers?)\b"
    r"|\b(?:i|i[ \t]+personally)[ \t]+(?:don't|do[ \t]+not|don['’]t)[ \t]+have[ \t]+(?:any[ \t]+)?"
    r"(?:personal|my[ \t]+own|own|one|an[ \t]+answer|an[ \t]+opinion|opinions|a[ \t]+preference|preferences|"
    r"beliefs|feelings|views)\b"
    r"|\bnot[ \t]+(?:able|possible|appropriate)[ \t]+(?:for[ \t]+me[ \t]+)?to[ \t]+"
    r"(?:answer|provide|choose|select|give)\b"
    r"|\bi['’]?m[ \t]+sorry,?[ \t]+but[ \t]+i\b"
    r"|无法回答|不能回答|无法提供|不能提供|无法选择|不能选择|无法作答|拒绝回答|不便回答|"
    r"没有(?:个人的?|自己的)(?:观点|意见|看法|偏好|感情|情感|信仰|立场)|不具备(?:个人)?(?:观点|意见|情感)",
    re.IGNORECASE,
)


def has_ai_disclosure(text: str) -> bool:
    """Whether the text contains an AI self-disclosure ("As an AI language model", "I am an AI",
    "作为一个AI语言模型", "我是一个人工智能", ...). Never raises."""
    t = _clean(_width(_safe_text(text)))
    return _AI_DISCLOSURE_RE.search(t) is not None


def _is_quoted_label(t: str, start: int, end: int) -> bool:
    """A label inside quotes (``'Answer:'``, ``“答案：”``) is an echo of the instructions."""
    after = t[end:end + 1]
    before = t[start - 1:start] if start > 0 else ""
    return bool(after) and after in _QUOTES_CLOSE and bool(before) and before in _QUOTES_OPEN


def _answer_labels(t: str) -> list[tuple[int, int]]:
    labels = []
    for m in _ANSWER_LABEL_RE.finditer(t):
        if not _is_quoted_label(t, m.start(), m.end()):
            labels.append((m.start(), m.end()))
            if len(labels) == MAX_LABELS:
                return labels
    if not labels:
        for m in _SHORT_LABEL_RE.finditer(t):
            labels.append((m.start(), m.end()))
            if len(labels) == MAX_LABELS:
                break
    return labels


def _explanation_label(t: str, start: int = 0, stop: int | None = None) -> re.Match[str] | None:
    for m in _EXPLANATION_LABEL_RE.finditer(t, start, len(t) if stop is None else stop):
        if not _is_quoted_label(t, m.start(), m.end()):
            return m
    return None


# --------------------------------------------------------------------------------------
# Sentences
# --------------------------------------------------------------------------------------

_ABBREVIATIONS = frozenset("e.g i.e mr mrs ms dr st vs etc u.s u.k jr sr no prof approx".split())
_SENTENCE_END_RE = re.compile(r"[.!?](?=[\s\"'”’)\]]|$)|[。！？]|\n")


def _sentence_end(text: str, start: int = 0, skip_leading_number: bool = False) -> int:
    """Index just past the end of the sentence starting at ``start`` (or len(text))."""
    for m in _SENTENCE_END_RE.finditer(text, start):
        ch = m.group()
        if ch == "\n":
            if text[start:m.start()].strip():
                return m.start()
            continue
        if ch == ".":
            word = re.search(r"([\w.]+)$", text[max(start, m.start() - 12):m.start()])
            w = word.group(1).lower() if word else ""
            if w in _ABBREVIATIONS:
                continue
            if skip_leading_number and w.isdigit() and not text[start:m.start() - len(w)].strip(" \t\"'(“[#:"):
                continue
            if len(w) == 1 and w.isalpha() and w.isupper():  # initials "J. Smith"
                continue
        return m.end()
    return len(text)


def first_sentence(text: str) -> str:
    """The first sentence of ``text`` (English ``.!?`` or Chinese ``。！？`` ends, or a line break),
    terminator included, surrounding whitespace stripped. Never raises."""
    t = _safe_text(text).strip()
    if not t:
        return ""
    return t[:_sentence_end(t)].strip()


def split_answer_explanation(text: str) -> tuple[str, str]:
    """Split a response into (answer part, explanation part) for memory cleaning.

    The answer part is the text after the first ``Answer:``/``答案：`` label up to the
    ``Explanation:``/``解释：`` label (label itself excluded; empty when there is no label);
    the explanation part is the text after the first explanation label (empty when none).
    Both are stripped and keep the original characters. Never raises.
    """
    raw = _safe_text(text)
    t = _width(raw)
    labels = _answer_labels(t)
    if labels:
        a_start = labels[0][1]
        exp = _explanation_label(t, a_start)
        answer = raw[a_start:exp.start() if exp else len(raw)]
    else:
        answer = ""
    return _strip_markup(answer), _explanation_text(raw, t, labels[0] if labels else None)


def _explanation_text(raw: str, t: str, label: tuple[int, int] | None) -> str:
    """Text after the explanation label that follows the answer label, or else the one before
    it ("Explanation: ...\nAnswer: 3"), cut at that answer label."""
    if label is None:
        exp = _explanation_label(t)
        return _strip_markup(raw[exp.end():]) if exp else ""
    exp = _explanation_label(t, label[1])
    if exp is not None:
        return _strip_markup(raw[exp.end():])
    exp = _explanation_label(t, 0, label[0])
    return _strip_markup(raw[exp.end():label[0]]) if exp else ""


def _strip_markup(s: str) -> str:
    return s.strip().strip("*_ \t\n").strip()


# --------------------------------------------------------------------------------------
# Option references
# --------------------------------------------------------------------------------------

_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_WORD_RE = re.compile(r"\w+")
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "last": -1,
    "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10,
}
_DIGIT_RE = re.compile(r"(?<![A-Za-z0-9_.,/:])(\d+)(?:st|nd|rd|th)?(?![A-Za-z0-9_]|[.,:]\d|[ \t]*%)")
_NUMBER_WORD_RE = re.compile(
    r"\b(?:option|choice|number|answer|no\.?)[ \t]+(one|two|three|four|five|six|seven|eight|nine|ten)\b"
    r"|\b(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last)[ \t]+"
    r"(?:option|choice|one|answer|statement|item)\b"
    r"|第[ \t]*([一二两三四五六七八九十])[ \t]*(?:个|项|种|条)|选项[ \t]*([一二三四五六七八九十])",
    re.IGNORECASE,
)
_BARE_NUMBER_WORD_RE = re.compile(
    r"[\W_]*(one|two|three|four|five|six|seven|eight|nine|ten|[一二三四五六七八九十])[\W_]*", re.IGNORECASE
)
# Parts of a number phrase that are not a choice: scale ranges and denominators.
_RANGE_RE = re.compile(
    r"\b(?:scale[ \t]+(?:of[ \t]+|from[ \t]+)?|from[ \t]+|between[ \t]+)\d{1,3}[ \t]*(?:to|-|–|and)[ \t]*\d{1,3}\b"
    r"|(?:从[ \t]*)?\d{1,3}[ \t]*(?:到|至)[ \t]*\d{1,3}",
    re.IGNORECASE,
)
_DENOMINATOR_RE = re.compile(r"\bout[ \t]+of[ \t]+\d+|满分[ \t]*\d+[ \t]*分?|共[ \t]*\d+[ \t]*个", re.IGNORECASE)
_LINE_ENUMERATOR_RE = re.compile(r"(?m)^[ \t>*_#-]*(\d{1,2})[ \t]*[.):、][ \t]*")
_INLINE_ENUMERATOR_RE = re.compile(r"(?<![\w.,])(\d{1,2})[.)、;][ \t]")
_LEAD_PREFIX_RE = re.compile(
    r"[\W_]*(?:(?:option|choice|number|no|num|answer|select|selected|choose|chose|pick|rating|score|"
    r"i[ \t]+(?:would[ \t]+|will[ \t]+|'d[ \t]+)?(?:choose|select|pick|say|go[ \t]+with|rate[ \t]+it)|"
    r"选项|选择|我选择?|第)[\W_]*){0,2}",
    re.IGNORECASE,
)
_LIST_SEP_RE = re.compile(
    r"^[ \t.;,]*(?:[,、;/&+]|\band\b|\bor\b|和|或|以及|及|与|\n[ \t>*•-]*)[ \t]*"
    r"(?:(?:and|or)[ \t]+)?(?:option|choice|选项)?[ \t]*[(\[]?[ \t]*$",
    re.IGNORECASE,
)
_ATTACH_CHARS = " \t.:)-–—(\"'“”"
_NEGATION_BEFORE_RE = re.compile(
    r"(?:\b(?:not|never|no|nor|neither|without)\b|n't|n’t|不是|并非|而非|并不是)"
    r"(?:[ \t]+[\w'’]+){0,3}[ \t\"'“‘(]*$",
    re.IGNORECASE,
)
_NEGATION_AFTER_RE = re.compile(
    r"^[\"'”’)]*[ \t]*(?:is|was|are|were)[ \t]+not\b"
    r"|^[\"'”’)]*[ \t]*(?:isn't|wasn't|aren't|isn’t)|^[\"'”’)]*[ \t]*不是",
    re.IGNORECASE,
)
# "Answer: not 1" / "not 'Agree'": immediately negated references inside an answer.
_NEGATED_REF_RE = re.compile(
    r"(?:\bnot|n't|n’t|不是|并非|而非)(?:[ \t]+(?:option|choice|number))?[ \t\"'“‘(]*$", re.IGNORECASE
)
# A one-word option ("agree", "never", "同意") in prose only counts as a first-person statement.
_FIRST_PERSON_BEFORE_RE = re.compile(
    r"(?:\bi|\bi'm|\bi’m|\bi'd|\bi’d|\bi've|\bi’ve)(?:[ \t]+[A-Za-z'’]+){0,3}[ \t]*:?[ \t]+$|我[^\W\d_]{0,2}$",
    re.IGNORECASE,
)
_QUESTION_END_RE = re.compile(r"[.!?。！？\n]|$")


@dataclass(frozen=True)
class _Ref:
    start: int
    end: int
    kind: str  # "number" or "text"
    value: int  # the number as written (kind number) or the option position (kind text)


@dataclass(frozen=True)
class _Options:
    text_re: re.Pattern[str] | None
    group_position: tuple[int, ...]
    specific: frozenset[int]
    item_res: tuple[re.Pattern[str], ...]


def _option_pattern(option: str) -> tuple[str, bool] | None:
    norm = _clean(option).strip()
    words = _WORD_RE.findall(norm)
    if not words or all(w.isdigit() for w in words):
        return None
    if _CJK_RE.search(norm):
        body = r"[\W_]*".join(re.escape(w) for w in words)
        return body, len(re.sub(r"\W", "", norm)) >= 3
    body = r"[\W_]+".join(re.escape(w) for w in words)
    return r"(?<![^\W_])" + body + r"(?![^\W_])", len(words) >= 2


@lru_cache(maxsize=512)
def _compile_options(options: tuple[str, ...]) -> _Options:
    patterns: list[tuple[int, int, str]] = []
    specific: set[int] = set()
    items: list[re.Pattern[str]] = []
    for pos, option in enumerate(options):
        pat = _option_pattern(option)
        if pat is None:  # a scale point: "7. 7" in an echoed list
            body = re.escape(_clean(option).strip() or str(pos + 1)) + r"(?![0-9])"
        else:
            body, is_specific = pat
            patterns.append((len(_clean(option)), pos, body))
            if is_specific:
                specific.add(pos)
        items.append(re.compile(r"(?<![0-9])" + str(pos + 1) + r"[ \t]*[.):、-][ \t]*(?:" + body + ")", re.IGNORECASE))
    patterns.sort(key=lambda p: (-p[0], p[1]))
    text_re = None
    if patterns:
        text_re = re.compile("|".join(f"({body})" for _, _, body in patterns), re.IGNORECASE)
    return _Options(text_re, tuple(pos for _, pos, _ in patterns), frozenset(specific), tuple(items))


def _in_question(s: str, start: int) -> bool:
    """Whether the sentence holding ``start`` ends with a question mark."""
    m = _QUESTION_END_RE.search(s, start, min(len(s), start + 400))
    return m is not None and m.group() in ("?", "？")


def _text_refs(s: str, opts: _Options, prose: bool = False) -> list[_Ref]:
    """Option texts named in ``s``, leftmost-longest. ``prose``: only confident mentions
    (specific options, or one-word options in a first-person statement), not negated, not in a question."""
    if opts.text_re is None:
        return []
    refs = []
    for m in opts.text_re.finditer(s):
        pos = opts.group_position[(m.lastindex or 1) - 1]
        if prose:
            before = s[max(0, m.start() - 40):m.start()]
            if pos not in opts.specific and not _FIRST_PERSON_BEFORE_RE.search(before):
                continue
            if _NEGATION_BEFORE_RE.search(before) or _NEGATION_AFTER_RE.search(s[m.end():m.end() + 30]):
                continue
            if _in_question(s, m.end()):
                continue
        refs.append(_Ref(m.start(), m.end(), "text", pos))
    return refs


def _to_int(digits: str) -> int:
    return int(digits) if len(digits) <= 6 else 10**7


def _mask(pattern: re.Pattern[str], s: str) -> str:
    return pattern.sub(lambda m: " " * len(m.group()), s)


@lru_cache(maxsize=64)
def _scale_range_re(lo: int, hi: int) -> re.Pattern[str]:
    return re.compile(rf"(?<![0-9]){lo}[ \t]*(?:to|-|–|~|到|至)[ \t]*{hi}(?![0-9])", re.IGNORECASE)


class _Ctx:
    """Everything about one question that resolution needs."""

    def __init__(self, options: tuple[str, ...], question_type: str, scale: tuple[int, int] | None):
        self.opts = _compile_options(options)
        self.options = options
        self.k = len(options)
        self.multi = question_type == "multiple_choice"
        self.is_scale = question_type == "scale" or scale is not None
        self.scale = scale

    def position(self, number: int) -> int | None:
        """Displayed position for a written number, None when out of range."""
        if number == -1:  # "the last option"
            return self.k - 1
        if self.scale is not None:
            lo, hi = self.scale
            if lo <= number <= hi and number - lo < self.k:
                return number - lo
            return None
        return number - 1 if 1 <= number <= self.k else None

    def mask_ranges(self, s: str) -> str:
        s = _mask(_RANGE_RE, s)
        if self.scale is not None:
            s = _mask(_scale_range_re(*self.scale), s)
        return s


def _number_refs(s: str, ctx: _Ctx) -> list[_Ref]:
    masked = _mask(_DENOMINATOR_RE, ctx.mask_ranges(s))
    refs = [_Ref(m.start(1), m.end(), "number", _to_int(m.group(1))) for m in _DIGIT_RE.finditer(masked)]
    for m in _NUMBER_WORD_RE.finditer(masked):
        idx = next(i for i in range(1, 5) if m.group(i))
        refs.append(_Ref(m.start(idx), m.end(idx), "number", _NUMBER_WORDS[m.group(idx).lower()]))
    return sorted(refs, key=lambda r: r.start)


def _echo_spans(s: str, ctx: _Ctx) -> tuple[list[tuple[int, int]], bool, int]:
    """Spans of an echoed or discussed option list, and whether ``s`` is such a list.

    A list is two or more displayed items repeated with their numbers ("1. Agree 2. Disagree"),
    two or more lines starting with different numbers ("1. ...\\n2. ..."), or three or more
    different inline enumerators ("1. x; 3. y; 4. z").
    """
    spans: list[tuple[int, int]] = []
    echoed: set[int] = set()
    for pos, item_re in enumerate(ctx.opts.item_res):
        for m in item_re.finditer(s):
            spans.append((m.start(), m.end()))
            echoed.add(pos)
    line_numbers = set()
    for m in _LINE_ENUMERATOR_RE.finditer(s):
        line_numbers.add(m.group(1))
        refs = _text_refs(s[m.end():m.end() + 200], ctx.opts)
        if refs and refs[0].start == 0:  # "3. Agree: ..." even when mislabelled
            spans.append((m.start(), m.end() + refs[0].end))
    inline_numbers = {m.group(1) for m in _INLINE_ENUMERATOR_RE.finditer(s)}
    is_list = len(echoed) >= 2 or len(line_numbers) >= 2 or len(inline_numbers) >= 3
    return spans, is_list, len(echoed)


def _blank(s: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return s
    chars = list(s)
    for a, b in spans:
        for j in range(a, b):
            chars[j] = " "
    return "".join(chars)


# --------------------------------------------------------------------------------------
# Resolving an answer
# --------------------------------------------------------------------------------------


_ALL_OPTIONS_RE = re.compile(
    r"[\W_]*(?:all|all[ \t]+of[ \t]+(?:them|these|the[ \t]+above|the[ \t]+options)"
    r"|全部|全选|都选|以上都是|以上全部)[\W_]*",
    re.IGNORECASE,
)
_MAX_SEGMENT_CHARS = 1000  # an answer is short; this bounds the pairwise checks below


@dataclass(frozen=True)
class _Found:
    kind: str  # ok | invalid | multiple | none
    positions: tuple[int, ...] = ()
    how: str = ""


_NONE = _Found("none")


def _decide(ctx: _Ctx, positions: list[int], invalid: bool, how: str) -> _Found:
    if invalid:
        return _Found("invalid", (), how)
    distinct = tuple(sorted(set(positions)))
    if not distinct:
        return _NONE
    if len(distinct) > 1 and not ctx.multi:
        return _Found("multiple", (), how)
    return _Found("ok", distinct, how)


def _resolve(segment: str, ctx: _Ctx) -> _Found:
    """Resolve an answer segment (the text after a label, a leading-number line, a short response)."""
    s = _clean(segment[:_MAX_SEGMENT_CHARS])
    if not s.strip():
        return _NONE
    if not ctx.multi:  # "Answer: not "1. A; 2. B; 3. C"": an echoed list names no answer
        spans, _, echoed = _echo_spans(s, ctx)
        if echoed >= min(3, ctx.k):
            s = _blank(s, spans)
    texts = _text_refs(s, ctx.opts)
    numbers = _number_refs(s, ctx)
    # Numbers inside a matched option text ("Thrift, saving money and 2 things") belong to the text.
    numbers = [n for n in numbers if not any(t.start <= n.start < t.end for t in texts)]
    if ctx.multi and _ALL_OPTIONS_RE.fullmatch(s):
        return _Found("ok", tuple(range(ctx.k)), "all")
    if not numbers and not texts:
        bare = _BARE_NUMBER_WORD_RE.fullmatch(s)
        if bare:
            numbers = [_Ref(bare.start(1), bare.end(1), "number", _NUMBER_WORDS[bare.group(1).lower()])]
    refs = sorted(texts + numbers, key=lambda r: r.start)
    if not refs:
        return _NONE
    if refs[0].kind == "number" and _LEAD_PREFIX_RE.fullmatch(s[:refs[0].start]):
        return _resolve_leading(s, refs, ctx)
    texts = [r for r in texts if not _NEGATED_REF_RE.search(s[max(0, r.start - 20):r.start])]
    numbers = [r for r in numbers if not _NEGATED_REF_RE.search(s[max(0, r.start - 20):r.start])]
    if not texts and not numbers:
        return _NONE
    if ctx.multi:
        how = "number_text" if numbers and texts else refs[0].kind
        return _collect(ctx, sorted(texts + numbers, key=lambda r: r.start), how)
    primary, secondary = (numbers, texts) if ctx.is_scale else (texts, numbers)
    chosen = primary or secondary
    if chosen is texts and numbers:  # "Rather important (1)": a number attached to the text must agree
        for t in texts:
            for n in numbers:
                if n.start >= t.end and s[t.end:n.start].strip(_ATTACH_CHARS + "[") == "":
                    p = ctx.position(n.value)
                    if p is not None and p != t.value:
                        return _Found("disagree", (), "text_number_conflict")
    return _collect(ctx, chosen, chosen[0].kind)


def _collect(ctx: _Ctx, refs: list[_Ref], how: str) -> _Found:
    positions, invalid = [], False
    for r in refs:
        if r.kind == "text":
            positions.append(r.value)
        else:
            p = ctx.position(r.value)
            if p is None:
                invalid = True
            else:
                positions.append(p)
    return _decide(ctx, positions, invalid, how)


def _attached(s: str, a: _Ref, b: _Ref) -> bool:
    return a.kind == "number" and b.kind == "text" and s[a.end:b.start].strip(_ATTACH_CHARS) == ""


def _resolve_leading(s: str, refs: list[_Ref], ctx: _Ctx) -> _Found:
    """A segment that starts with a number: the number (or list of numbers) decides.

    Its attached option text ("2. Very important") must agree; a different *specific* option
    named later in the same sentence ("4, which is 'Not at all important'") makes a single
    answer contradictory. Numbers later in the sentence are prose ("2, I have 3 kids").
    """
    positions: list[int] = []
    invalid = conflict = False
    last = 0
    for i, r in enumerate(refs):
        if i > 0:
            gap = s[refs[i - 1].end:r.start]
            attached = _attached(s, refs[i - 1], r)
            listed = len(gap) <= 12 and _LIST_SEP_RE.match(gap) is not None
            if not attached and not (listed and (r.kind == "number" or ctx.multi)):
                break
        last = i
        if r.kind == "number":
            p = ctx.position(r.value)
            if p is None:
                invalid = True
            else:
                positions.append(p)
        elif i > 0 and _attached(s, refs[i - 1], r):
            p = ctx.position(refs[i - 1].value)
            if p is not None and p != r.value:
                conflict = True
        else:
            positions.append(r.value)
    if not ctx.multi and positions and not invalid:
        tail_from = refs[last].end
        while tail_from < len(s) and s[tail_from] in _ATTACH_CHARS:
            tail_from += 1
        for t in _text_refs(s[tail_from:_sentence_end(s, tail_from)], ctx.opts, prose=True):
            if t.value not in positions:
                conflict = True
    if not conflict and not ctx.multi and not ctx.is_scale and len(positions) == 1 and not invalid:
        conflict = _foreign_label(s, refs[last], ctx.options[positions[0]])
    if conflict:  # single choice: two options named; multiple choice: an item that names no one option
        return _Found("disagree", (), "number_text_conflict")
    return _decide(ctx, positions, invalid, "number")


_LABEL_WORD_RE = re.compile(r"[A-Za-z]+")
_EXPLAINING_WORDS = frozenset(
    "i i'm i'd me my we our because since as so if it this that which who think believe feel would is are was".split()
)


def _foreign_label(s: str, ref: _Ref, option: str) -> bool:
    """Whether the text attached to a leading number ("4. Not very important") reads as an
    option label of some other question, sharing no word with the option the number names.

    Small models copy a whole earlier answer from their memory ("Answer: 4. Not very
    important" on a question whose option 4 is "Seeing that people have more say ..."): the
    number is then a copy too, not a choice. Only a short label-like tail counts: two to five
    words (one word is often a paraphrase: "3. Rarely" for "Never, practically never"), the whole sentence, no explaining word ("because", "I", "which"), and not one content
    word (or its first five letters) in common with the numbered option.
    """
    start = ref.end
    while start < len(s) and s[start] in _ATTACH_CHARS:
        start += 1
    if start >= len(s) or not any(c in s[ref.end:start] for c in ".):-–—"):
        return False
    tail = s[start:_sentence_end(s, start)].strip().rstrip(".!;\"'”")
    words = [w.lower() for w in _LABEL_WORD_RE.findall(tail)]
    if not 2 <= len(words) <= 5 or len(words) != len(tail.split()) or _EXPLAINING_WORDS & set(words):
        return False
    # Any shared word keeps the number: "4. Not very serious" for "Not very secure" is a slip, not a copy.
    return not {w[:5] for w in words} & {w.lower()[:5] for w in _LABEL_WORD_RE.findall(option)}


# --------------------------------------------------------------------------------------
# Free text
# --------------------------------------------------------------------------------------

_FIRST_LINE_NUMBER_RE = re.compile(r"[ \t>\"'“(\[-]*\d{1,3}[ \t]*(?:[.):、\]][ \t]*\S|$)")
_CUE_NUMBER_RE = re.compile(
    r"\b(?:option|choice|number)[ \t]*(?:(?:no\.?|#)[ \t]*)?\(?(\d{1,7})\b"
    r"|\bi(?:[ \t]*(?:would|will|'d|'ll|’d|’ll))?[ \t]*(?:choose|chose|select|pick|go[ \t]+with|vote[ \t]+for|"
    r"rate(?:[ \t]+(?:it|this|myself|my[ \t]+\w+))?(?:[ \t]+(?:as|at))?(?:[ \t]+an?)?|give(?:[ \t]+it)?(?:[ \t]+an?)?|"
    r"say)[ \t]+(?:option[ \t]+|choice[ \t]+|number[ \t]+|an?[ \t]+)?#?\(?(\d{1,7})\b(?![ \t]*%)"
    r"|(?<![\d.])(\d{1,7})[ \t]*(?:/|out[ \t]+of)[ \t]*(\d{1,3})\b"
    r"|我(?:会|要|愿意)?选(?:择|项)?[ \t]*(?:第|选项)?[ \t]*(\d{1,7})"
    r"|(?<![\d.])(\d{1,7})[ \t]*分(?!钟|之)",
    re.IGNORECASE,
)


def _free_text(region: str, ctx: _Ctx) -> _Found:
    """Rule 3 of the module docstring: no label gave an answer."""
    s = _clean(region)
    if not s.strip():
        return _NONE
    spans, is_list, _ = _echo_spans(s, ctx)
    s = _blank(s, spans) if is_list else s
    if not is_list:
        first_line = next((ln for ln in s.split("\n") if ln.strip()), "")
        if _FIRST_LINE_NUMBER_RE.match(first_line):
            found = _resolve(first_line[:_sentence_end(first_line, 0, skip_leading_number=True)], ctx)
            if found.kind != "none":
                return _Found(found.kind, found.positions, "leading_number")
        stripped = s.strip()
        if len(stripped) <= 60 and "\n" not in stripped and len(_WORD_RE.findall(stripped)) <= 4:
            found = _resolve(stripped, ctx)
            if found.kind != "none":
                return _Found(found.kind, found.positions, "short_response")

    positions, invalid = [], False
    for m in _CUE_NUMBER_RE.finditer(ctx.mask_ranges(s)):
        if m.group(3) is not None:  # "8/10", "8 out of 10": a choice only when the denominator is the scale's top
            if ctx.scale is None or _to_int(m.group(4)) != ctx.scale[1]:
                continue
            digits = m.group(3)
        elif m.group(6) is not None:  # "7分"
            if not ctx.is_scale:
                continue
            digits = m.group(6)
        else:
            digits = m.group(1) or m.group(2) or m.group(5)
        p = ctx.position(_to_int(digits))
        if p is None:
            invalid = True
        else:
            positions.append(p)
    if positions or invalid:
        return _decide(ctx, positions, invalid, "cue_number")

    if is_list:  # a response that lists the options discusses them; naming one is not choosing it
        return _NONE
    refs = _text_refs(s, ctx.opts, prose=True)
    if refs:
        return _decide(ctx, [r.value for r in refs], False, "option_text")
    return _NONE


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------

_STATUS = {
    "ok": Status.OK,
    "invalid": Status.INVALID_OPTION,
    "multiple": Status.MULTIPLE_FOR_SINGLE,
    "disagree": Status.NUMBER_TEXT_DISAGREE,
}
# A hallucinated next turn: what follows it answers a question nobody asked.
_CONTINUATION_RE = re.compile(
    r"(?m)^[ \t>*_#-]*(?:request|user|human|请求)[ \t*_]*:|I want you to act as|我希望你扮演", re.IGNORECASE
)
_PARAGRAPH_RE = re.compile(r"\n[ \t]*\n")


def _validate(options: Sequence[str], question_type: str, scale: tuple[int, int] | None) -> tuple[str, ...]:
    if question_type not in QUESTION_TYPES:
        raise ValueError(f"question_type={question_type!r} is not one of {', '.join(QUESTION_TYPES)}.")
    if isinstance(options, (str, bytes)) or not isinstance(options, Sequence) or len(options) == 0:
        raise ValueError(f"options={options!r} must be a non-empty sequence of option texts in displayed order.")
    if scale is not None:
        try:
            lo, hi = int(scale[0]), int(scale[1])
        except (TypeError, ValueError, IndexError):
            raise ValueError(f"scale={scale!r} must be a (low, high) pair of integers, e.g. (1, 10).") from None
        if hi < lo:
            raise ValueError(f"scale={scale!r} has high < low; pass (low, high), e.g. (1, 10).")
    return tuple("" if o is None else str(o) for o in options)


def _paragraph(t: str, start: int, ctx: _Ctx) -> tuple[int, int, str]:
    """The answer after a label ending at ``start`` in the width-normalised text ``t``: its span
    up to the explanation label / next answer label / blank line, and its text (empty when it
    is an echo of the option list)."""
    n = len(t)
    i = start
    while i < n and t[i] in " \t\r\n*_>:-" and i - start < 200:  # "Answer:\n\n2. Very important"
        i += 1
    stop = min(n, i + 600)
    exp = _explanation_label(t, i, stop)
    if exp is not None:
        stop = exp.start()
    nxt = _ANSWER_LABEL_RE.search(t, i, stop)
    if nxt is not None and nxt.start() > i:
        stop = nxt.start()
    para = _PARAGRAPH_RE.search(t, i, stop)
    if para is not None:
        stop = para.start()
    text = t[i:stop]
    _, _, echoed = _echo_spans(text, ctx)
    if echoed >= (ctx.k if ctx.multi else min(3, ctx.k)) and ctx.k >= 2:
        text = ""  # "Answer: 1. Favor 2. Oppose": an echoed option list names no answer
    return i, stop, text


def _starts_list(t: str, a: int, ctx: _Ctx) -> bool:
    """Whether the answer after a label opens an enumerated list (single choice: not an answer)."""
    para_end = _PARAGRAPH_RE.search(t, a, min(len(t), a + 1500))
    block = _clean(t[a:para_end.start() if para_end else min(len(t), a + 1500)])
    numbers = {m.group(1) for m in _LINE_ENUMERATOR_RE.finditer(block)}
    return len(numbers) >= 2 and _LINE_ENUMERATOR_RE.match(block) is not None


def _answer_from_label(t: str, end: int, ctx: _Ctx) -> tuple[_Found, int, int]:
    a, b, para = _paragraph(t, end, ctx)
    if not para.strip() or (not ctx.multi and _starts_list(t, a, ctx)):
        return _NONE, a, b
    if ctx.multi:
        return _resolve(para, ctx), a, b
    cut = _sentence_end(para, 0, skip_leading_number=True)
    found = _resolve(para[:cut], ctx)
    line_end = para.find("\n")
    line_end = len(para) if line_end < 0 else line_end
    if found.kind == "none" and cut < line_end:
        # The first sentence held nothing; try the rest of its line ("Answer: I think so. 2").
        # Not past the line: "Answer: The Honorable Carlos Herrera\nChat id: ... &2 ..." names
        # no option, and a stray number in the noise below it is no answer.
        found = _resolve(para[:line_end], ctx)
        return found, a, a + line_end
    return found, a, a + cut


def parse_response(
    text: str,
    options: Sequence[str],
    question_type: str = "single_choice",
    scale: tuple[int, int] | None = None,
    language: str = "en",
) -> ParseResult:
    """Parse one raw response into displayed option position(s) and a status.

    ``options`` are the option texts in displayed order (numbered 1..k in the prompt);
    ``scale=(lo, hi)`` for numeric scales whose options are the scale points (a written
    number v maps to position v - lo). ``language`` is accepted for the record: English and
    Chinese patterns are always both active, since models switch language freely.
    Raises ValueError only for bad ``options``/``question_type``/``scale``; never because of
    ``text``. See the module docstring for the precedence of rules.
    """
    opts = _validate(options, question_type, scale)
    scale_t = (int(scale[0]), int(scale[1])) if scale is not None else None
    return _parse(_safe_text(text), opts, question_type, scale_t)


def _parse(raw: str, options: tuple[str, ...], question_type: str, scale: tuple[int, int] | None) -> ParseResult:
    ctx = _Ctx(options, question_type, scale)
    t = _width(raw)
    cleaned = _clean(t)
    disclosure = _AI_DISCLOSURE_RE.search(cleaned) is not None
    refusal = _REFUSAL_RE.search(cleaned) is not None

    labels = _answer_labels(t)
    answer_text = ""
    found = _NONE
    chosen_label = None
    for idx, (start, end) in enumerate(labels):
        candidate, a, b = _answer_from_label(t, end, ctx)
        if not answer_text:
            answer_text = _strip_markup(raw[a:b])
        if candidate.kind == "none":
            continue
        found = _Found(candidate.kind, candidate.positions, "answer_line_" + candidate.how)
        answer_text = _strip_markup(raw[a:b])
        chosen_label = (start, end)
        if not ctx.multi and found.kind == "ok":
            found = _check_later_labels(t, labels[idx + 1:], b, ctx, found)
        break

    label = chosen_label if chosen_label is not None else (labels[0] if labels else None)
    explanation = _explanation_text(raw, t, label)

    if found.kind == "none":
        if refusal or disclosure:
            return ParseResult(Status.REFUSAL, (), "refusal", disclosure, answer_text, explanation)
        regions = []
        first_exp = _explanation_label(t)
        if first_exp is not None and t[:first_exp.start()].strip():
            regions.append(t[:first_exp.start()])
        regions.append(t)
        for region in regions:
            found = _free_text(region, ctx)
            if found.kind != "none":
                break

    if found.kind == "none":
        return ParseResult(Status.NO_ANSWER, (), "none", disclosure, answer_text, explanation)
    status = _STATUS[found.kind]
    positions = found.positions if status is Status.OK else ()
    return ParseResult(status, positions, found.how, disclosure, answer_text, explanation)


def _check_later_labels(t: str, later: list[tuple[int, int]], after: int, ctx: _Ctx, found: _Found) -> _Found:
    """Single choice: further answer labels before the explanation (and before a hallucinated
    next turn) must agree, else the response gives several answers."""
    limit = len(t)
    exp = _explanation_label(t, after)
    if exp is not None:
        limit = exp.start()
    cont = _CONTINUATION_RE.search(t, after)
    if cont is not None:
        limit = min(limit, cont.start())
    for start, end in later:
        if start >= limit:
            break
        other, _, _ = _answer_from_label(t, end, ctx)
        if other.kind == "ok" and other.positions != found.positions:
            return _Found("multiple", (), found.how + "_labels_disagree")
    return found
