"""The lint: checks every built row for what a model cannot answer as asked; any finding stops the build.

A survey question put to a model must read as the respondent heard it. The checks catch what
questionnaire files leave behind: interviewer instructions and markup, unresolved fills and
empty slots, batteries whose item was lost (so different variables read the same), codebook
labels standing in for a question, truncated text, options that do not match the
distribution, codebook shorthand in the options, another script inside zh/ja/ar text, and
residual answers ("Other", "As many as you want") inside an ordered scale. Exceptions are
curated in ``curation/lint_allow.yaml`` with a reason; nothing else silences a finding.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

#: The kinds of finding, each with what it means.
KINDS: dict[str, str] = {
    "instruction": "interviewer instruction or questionnaire markup in the text",
    "placeholder": "unresolved fill, placeholder or empty slot",
    "duplicate_text": "different source variables with the same question text in one config and language",
    "label_as_question": "an ALL-CAPS codebook label instead of a question",
    "truncated": "the question stops mid-sentence",
    "option_mismatch": "options, codes and distributions disagree (count, sum, duplicates, scale range)",
    "option_shorthand": "codebook shorthand or lower-cased codebook text in an option",
    "foreign_script": "Latin script inside zh/ja/ar text beyond the curated allowlist",
    "residual_in_scale": "a residual answer (Other, none of these, ...) inside an ordinal scale",
    "unbalanced_parentheses": "an opening or closing parenthesis without its partner (a cut interviewer note or fill)",
    "coding_note": "a coding note of the codebook ('(Coded if ...)') in the text",
    "card_reference": "a reference to a card or show card the respondent never sees",
    "option_grammar": "broken grammar in an option, left by expanding codebook shorthand ('I not attending', 'I pays')",
    "name_case": "a proper name written in lower case ('Donald trump'), or in other case than the question",
    "missing_question": "a battery item without its question: no question mark and the text ends in a bare phrase",
    "interviewer_text": "words meant for the interviewer or garbled in the export ('or haven't you made up your mind', 'Please Some')",
    "appended_question": "another question's text glued before this one (e.g. the marital-status question before 'Have you ever been widowed?')",
    "duplicate_prompt": "two rows of one config with the same question and options and different human distributions",
}

# Answers that sit outside an ordered scale. Dropped from ordinal items by the builder
# (``is_residual``) and never allowed in an ordinal row by the lint.
RESIDUAL_RE = re.compile(
    r"^(other\b.*|as many as (you|they) want|not allowed to vote|none of (these|the above)|does not apply|"
    r"no opinion|(it )?depends( on.*)?|does(n't| not) apply.*|no job|leaving labor force|no class|no children)$", re.IGNORECASE)

_CAPS_RUN = re.compile(r"\b[A-Z]{2,}(?:[ ,;:&/'.-]+[A-Z]{2,})+\b")
_CAPS_WORD = re.compile(r"\b[A-Z]{3,}\b")
_INSTRUCTION = re.compile(
    r"\b(interviewer|read (each|the) (item|list|choices|categories)|code one|hand (card|respondent)|show card|"
    r"probe|circle one|if necessary|ask all|record verbatim|respondent booklet|for [\w-]+ respondents)\b", re.IGNORECASE)
_ITEM_LETTER = re.compile(r"(?:^|[?.:!)\]]\s+)[A-Z]\.\s+[A-Z0-9\"'“]")
_MARKUP = re.compile(r"\. \. \.|[<>{}\[\]]|\(\s*(item|name|fill)\s*\)|#|\*")
_PLACEHOLDER = re.compile(r"fill\b|\[[^\]]*\]|_{2,}|\(\s*\)|（\s*）|「\s*」|\bXX+\b|\bR's\b|该项", re.IGNORECASE)
_DOUBLED_APOSTROPHE = re.compile(r"''")
_TERMINAL = tuple("?.!:)\"'”’？。！：」』)؟…")
_LATIN = re.compile(r"[A-Za-z]{2,}")
_SCALE_RANGE = re.compile(r"scale (?:of|from) (\d+) to (\d+)", re.IGNORECASE)
_LOWER_SHORTHAND = re.compile(r"\brespondent\b|\(vol\b|phone mode|(^|\s)i(\s|')|\bu\.s\.|(^|\s)r(\s|'s\b)|^R (does|is|has|would|was)\b|\bR's\b")
# Acronyms that are words of the question, not instructions.
ACRONYMS = frozenset({"AIDS", "HIV", "USA", "COVID", "CEO", "CEOS", "LGBT", "GMO", "DNA", "NATO", "IRS", "FBI",
                      "CIA", "NSA", "NASA", "TV", "EU", "UN", "US", "ID", "LSD", "IQ", "AM", "PM", "WTO", "IMF"})


@dataclass(frozen=True)
class Finding:
    row: str
    kind: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"row": self.row, "kind": self.kind, "detail": self.detail}


class LintError(ValueError):
    """The built rows have lint findings; the build stops (they are in build_report.json)."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        kinds = sorted({f.kind for f in findings})
        first = findings[0]
        super().__init__(f"lint: {len(findings)} finding(s) ({', '.join(kinds)}), e.g. {first.row}: {first.kind}: "
                         f"{first.detail}; see build_report.json, then fix the source text in the curation files "
                         "or exclude the item with a reason")


_CODING_NOTE = re.compile(r"\(\s*coded\b|\bcoded if\b", re.IGNORECASE)
_CARD = re.compile(r"\b(?:this|the|a|show|hand)\s+card\b|\bcard\s+[A-Z0-9]+\b|\bon (?:this|the) card\b", re.IGNORECASE)
_OPTION_GRAMMAR = re.compile(r"^I (?:not|pays|is|has|was|does|wants|were)\b|^(?:Worker|Respondent|R) (?:wants|has|is|does)\b")
_INTERVIEWER_TEXT = re.compile(r"haven't you (?:made|have) up your mind|\bPlease [A-Z][a-z]+ (?:people|think|say)\b|\bhave up your mind\b")
#: Proper names the sources write in lower case in answer labels; always capitalised.
PROPER_NAMES = ("Trump", "Biden", "Harris", "Clinton", "Obama", "Romney", "Sanders", "America", "American", "Americans",
                "Bible", "Congress", "Catholic", "Catholics", "Christ", "Jesus", "Muslim", "Muslims", "Jewish")
_NAME_WORDS = re.compile(r"\b(" + "|".join(n.lower() for n in PROPER_NAMES) + r")\b")


#: Words by which a text without a question mark still says what the respondent is to judge.
_ASKS = re.compile(r"\b(?:agree|disagree|tell|indicate|rate|describes?|whether|how|what|which|approve|favou?r|"
                   r"do you|would you|are you)\b",
                   re.IGNORECASE)


def _unbalanced(text: str) -> bool:
    depth = 0
    for c in text:
        depth += c == "("
        depth -= c == ")"
        if depth < 0:
            return True
    return depth != 0


def _appended_question(question: str, options: list[str]) -> bool:
    """A first question that offers alternatives none of which are options, then another question."""
    parts = [p.strip() for p in question.split("?") if p.strip()]
    if question.count("?") < 2 or not parts:
        return False
    first = re.split(r"(?<=[.!:])\s+", parts[0])[-1].lower()  # the first question sentence
    direct = re.match(r"(?:are|were|is|was|do|did|have|has)\b", first) is not None and len(first.split()) <= 25
    offers = first.count(",") >= 2 and " or " in first
    named = any(re.sub(r"\W+", " ", o.lower()).strip() in first for o in options if len(o) > 3)
    return direct and offers and not named


def _missing_question(question: str) -> bool:
    """No question mark and no word that says what to judge: a battery item cut from its stem."""
    return "?" not in question and not question.rstrip().endswith(":") and not _ASKS.search(question)


def _check_wording(row: dict[str, Any]) -> list[Finding]:
    """The kinds of damage dataset 2.0 let through (issue 22), English rows only."""
    rid, question, options = row["id"], row["question"], list(row["options"])
    out: list[Finding] = []
    for where, text in [("question", question)] + [(f"option {i + 1}", o) for i, o in enumerate(options)]:
        if _unbalanced(text):
            out.append(Finding(rid, "unbalanced_parentheses", f"{where}: {text[:80]!r}"))
        for kind, pattern in (("coding_note", _CODING_NOTE), ("card_reference", _CARD),
                              ("interviewer_text", _INTERVIEWER_TEXT)):
            m = pattern.search(text)
            if m:
                out.append(Finding(rid, kind, f"{where}: {m.group(0)!r}"))
        m = _NAME_WORDS.search(text)
        if m:
            out.append(Finding(rid, "name_case", f"{where}: {m.group(0)!r} is a proper name"))
    capitalised = set(re.findall(r"(?<=[a-z,;] )([A-Z][a-z]+)", question))
    for i, o in enumerate(options):
        m = _OPTION_GRAMMAR.search(o)
        if m:
            out.append(Finding(rid, "option_grammar", f"option {i + 1} {o!r}"))
        for word in re.findall(r"\b[a-z]{3,}\b", o):
            if word.capitalize() in capitalised and not re.search(rf"\b{word}\b", question):
                out.append(Finding(rid, "name_case", f"option {i + 1} {o!r}: the question writes {word.capitalize()!r}"))
    if _missing_question(question):
        out.append(Finding(rid, "missing_question", f"no question mark and the text ends {question[-50:]!r}"))
    if _appended_question(question, options):
        out.append(Finding(rid, "appended_question", f"the first question {question.split('?')[0][:70]!r}… is not "
                           f"answered by the options {options[:4]}"))
    return out


def _check_prompts(rows: list[dict[str, Any]]) -> list[Finding]:
    """One row per prompt within a config: the same question and options (shown shuffled, so in any
    order) must not carry two human distributions. Every row of such a group is a finding."""
    groups: dict[tuple[str, str, tuple[str, ...]], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        key = (r.get("config", r["culture"]), re.sub(r"\W+", " ", r["question"]).strip().lower(),
               tuple(sorted(re.sub(r"\W+", " ", o).strip().lower() for o in r["options"])))
        groups[key].append(r)
    out = []
    for group in groups.values():
        targets = {tuple(sorted((re.sub(r"\W+", " ", o).strip().lower(), round(float(x), 9))
                                for o, x in zip(r["options"], r["human_distribution"]))) for r in group}
        if len(targets) > 1:
            ids = sorted(r["id"] for r in group)
            for rid in ids:
                out.append(Finding(rid, "duplicate_prompt", f"same question and options as {[i for i in ids if i != rid]} "
                                   "with another human distribution"))
    return out


def is_residual(option: str) -> bool:
    return bool(RESIDUAL_RE.match(option.strip()))


def _caps_outside_acronyms(text: str) -> list[str]:
    runs = []
    for m in _CAPS_RUN.finditer(text):
        words = re.findall(r"[A-Z]{2,}", m.group(0))
        if not all(w in ACRONYMS for w in words):
            runs.append(m.group(0))
    return runs


def _letters_upper_share(text: str) -> float:
    letters = [c for c in text if c.isalpha() and c.isascii()]
    return sum(c.isupper() for c in letters) / len(letters) if letters else 0.0


def _check_text(row: dict[str, Any], allow: dict[str, Any]) -> list[Finding]:
    rid, lang = row["id"], row["language"]
    question = row["question"]
    options = list(row["options"])
    out: list[Finding] = []
    texts = [("question", question)] + [(f"option {i + 1}", o) for i, o in enumerate(options)]
    for where, text in texts:
        if lang == "en":
            runs = _caps_outside_acronyms(text)
            if runs:
                out.append(Finding(rid, "instruction", f"{where}: ALL-CAPS instruction {runs[0]!r}"))
            m = _INSTRUCTION.search(text)
            if m:
                out.append(Finding(rid, "instruction", f"{where}: interviewer wording {m.group(0)!r}"))
        m = _MARKUP.search(text)
        if m:
            out.append(Finding(rid, "instruction", f"{where}: questionnaire markup {m.group(0)!r}"))
        m = _PLACEHOLDER.search(text)
        if m:
            out.append(Finding(rid, "placeholder", f"{where}: {m.group(0)!r}"))
        if _DOUBLED_APOSTROPHE.search(text):
            out.append(Finding(rid, "placeholder", f"{where}: doubled apostrophe in {text[:60]!r}"))
        if lang in ("zh", "ja", "ar"):
            allowed = set(allow.get("latin", {}).get(rid.rsplit(".", 1)[0], ()) or ()) | set(allow.get("latin_all", ()) or ())
            latin = [w for w in _LATIN.findall(unicodedata.normalize("NFKC", text)) if w not in allowed]
            if latin:
                out.append(Finding(rid, "foreign_script", f"{where}: Latin {latin[:3]} in {lang} text"))
    if lang == "en" and _ITEM_LETTER.search(question):
        out.append(Finding(rid, "instruction", f"battery item lettering {_ITEM_LETTER.search(question).group(0)!r}"))
    if lang == "en" and len(re.findall(r"[A-Za-z]+", question)) >= 2 and _letters_upper_share(question) > 0.6:
        out.append(Finding(rid, "label_as_question", f"question {question!r} is an ALL-CAPS label"))
    if len(re.findall(r"\w+", question)) < 4 and lang == "en":
        out.append(Finding(rid, "label_as_question", f"question {question!r} is a label, not a question"))
    if not question.rstrip().endswith(_TERMINAL):
        out.append(Finding(rid, "truncated", f"question ends {question[-30:]!r} without closing punctuation"))
    if lang == "en":
        for i, o in enumerate(options):
            if o[:1].islower():
                out.append(Finding(rid, "option_shorthand", f"option {i + 1} {o!r} starts lower-case"))
            m = _LOWER_SHORTHAND.search(o)
            if m:
                out.append(Finding(rid, "option_shorthand", f"option {i + 1} {o!r}: codebook shorthand {m.group(0).strip()!r}"))
    return out


def _check_numbers(row: dict[str, Any]) -> list[Finding]:
    rid, options, dist, codes = row["id"], list(row["options"]), list(row["human_distribution"]), list(row["option_codes"])
    out = []
    if not (len(options) == len(dist) == len(codes)):
        out.append(Finding(rid, "option_mismatch", f"{len(options)} options, {len(dist)} shares, {len(codes)} codes"))
    elif any((not math.isfinite(x)) or x < 0 for x in dist) or abs(sum(dist) - 1) > 1e-6:
        out.append(Finding(rid, "option_mismatch", f"human_distribution sums to {sum(dist):.6f}"))
    if len(set(o.strip().lower() for o in options)) != len(options):
        out.append(Finding(rid, "option_mismatch", f"repeated option text in {options}"))
    if len(set(codes)) != len(codes):
        out.append(Finding(rid, "option_mismatch", f"repeated option code in {codes}"))
    for g in row.get("demographics") or ():
        if len(g["distribution"]) != len(options) or abs(sum(g["distribution"]) - 1) > 1e-6:
            out.append(Finding(rid, "option_mismatch", f"group {g['group']} distribution does not fit the options"))
    m = _SCALE_RANGE.search(row["question"])
    if m and int(m.group(2)) - int(m.group(1)) + 1 != len(options):
        out.append(Finding(rid, "option_mismatch", f"text says scale {m.group(1)}-{m.group(2)} but there are "
                           f"{len(options)} options {options[:3]}..."))
    if row["ordinal"]:
        residual = [o for o in options if is_residual(o)]
        if residual:
            out.append(Finding(rid, "residual_in_scale", f"ordinal item offers residual answer(s) {residual}"))
    return out


def _check_duplicates(rows: list[dict[str, Any]], allow: dict[str, Any]) -> list[Finding]:
    groups: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    ids: dict[tuple[str, str, str, str], str] = {}
    for r in rows:
        key = (r.get("config", r["culture"]), r["language"], re.sub(r"\W+", " ", r["question"]).strip().lower())
        groups[key].add(r["source_variable"])
        ids[(*key, r["source_variable"])] = r["id"]
    allowed = {frozenset(entry["variables"]) for entry in (allow.get("same_text") or {}).values()}
    out = []
    for key, variables in groups.items():
        if len(variables) > 1 and frozenset(variables) not in allowed:
            for v in sorted(variables):
                out.append(Finding(ids[(*key, v)], "duplicate_text",
                                   f"same question text as {sorted(variables - {v})} ({key[0]}, {key[1]})"))
    return out


def lint(rows: list[dict[str, Any]], allow: dict[str, Any] | None = None) -> list[Finding]:
    """Every finding over ``rows``, sorted by row id and kind."""
    allow = allow or {}
    findings: list[Finding] = []
    for row in rows:
        findings += _check_text(row, allow)
        findings += _check_numbers(row)
        if row["language"] == "en":
            findings += _check_wording(row)
    findings += _check_duplicates(rows, allow)
    findings += _check_prompts(rows)
    return sorted(set(findings), key=lambda f: (f.row, f.kind, f.detail))
