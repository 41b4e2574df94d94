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
    findings += _check_duplicates(rows, allow)
    return sorted(set(findings), key=lambda f: (f.row, f.kind, f.detail))
