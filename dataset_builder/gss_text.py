"""GSS questionnaire text -> the question as a respondent hears it.

The documentation's ``question`` field is questionnaire text: interviewer instructions in
capitals ("READ EACH ITEM; CODE ONE FOR EACH."), battery lettering ("D. Education"), item
placeholders ("on (ITEM)?"), alternative fills ("(city/town/community)"), doubled apostrophes
from an SQL export and the odd repeated clause. ``normalise`` undoes each of these by rule and
says which rules fired, so every row lists its repairs; whatever a rule cannot fix is caught
by the lint and curated in ``curation/gss_text.yaml``.
"""

from __future__ import annotations

import re

_ELLIPSIS = re.compile(r"\s*(?:\.\s?){3,}\s*|\s*…\s*")
_CAPS_SEGMENT = re.compile(
    r"(?:\(\s*)?\b(?:IF|READ|CODE|HAND|LET|RECORD|ASK|PROBE|CIRCLE|SHOW|USE|INTERVIEWER|ENTER|CHECK|MARK|REPEAT|"
    r"FIRST|NOTE|ALL|PRESS|DO|ONLY|SKIP)\b[A-Z0-9 ,;/&'\".()-]*?(?:[A-Z]{2,}\)?)\s*(?:[.;:!?]|$)\)?")
_CAPS_PAREN = re.compile(r"\(([^()]*)\)")
_ITEM_PLACEHOLDER = re.compile(r"\(\s*(?:ITEM|item)\s*\)")
_SLOT = "\u2063ITEM\u2063"  # an invisible separator pair: no source text contains it
_ITEM_LETTER = re.compile(r"(^|[?.:!)\"”]\s+|\s)([A-Z])\.\s+(?=[A-Z0-9\"'“(])")
_GLUED_LETTER = re.compile(r"(?<=[a-z])\.([A-Z])\.\s+(?=[A-Z])")  # "people.A. Where"
_SLASH_FILL = re.compile(r"\(([A-Za-z-]+(?:/[A-Za-z-]+)+)\)")
_REPEAT = re.compile(r"(\b[\w'’,]+(?:\s+[\w'’,]+){5,}?)\s+\1")
_FIRST = re.compile(r"\bFirst\s*(?:\.\s?){3,}\s*([a-z])")
_CARD = re.compile(r"(?:Now )?(?:[Ll]ook at |[Ss]how |[Hh]and )?CARD [A-Z0-9]+\.?")
_DASHES = re.compile(r"\s*--\s*")
_SPACES = re.compile(r"\s+")
_JOIN_WORDS = frozenset({"if", "are", "is", "on", "about", "to", "that", "for", "by", "because", "of", "the", "who",
                         "when", "was", "were", "should", "would", "be", "you", "it", "a", "an", "and", "or", "than"})
TRUNCATED_LENGTH = 250
_TERMINAL = tuple("?.!:)\"'”’…")
_LEAD_IN = frozenset({"Are", "Would", "Is", "Should", "Do", "Does", "Have", "Has", "Did", "I", "In", "Will", "Was",
                      "Were", "Can", "Could"})
#: Named fills of the questionnaire software and what the respondent heard.
FILLS = {"spousepartfill": "spouse or partner", "spfill": "spouse", "hefill": "he or she", "himfill": "him or her",
         "hisfill": "his or her"}
_FILL = re.compile(r"\b(" + "|".join(FILLS) + r")\b")


def _upper_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(c.isupper() for c in letters) / len(letters) if letters else 0.0


def _lower_first(text: str) -> str:
    first = text.split(" ", 1)[0]
    if len(first) > 1 and (first[1:].lower() != first[1:] or first in ("I", "I'm", "I've")):
        return text  # an acronym or a name
    return text[:1].lower() + text[1:]


def _drop_caps_parens(text: str) -> str:
    def repl(m: re.Match) -> str:
        inner = m.group(1)
        if sum(c.isupper() for c in inner) >= 3 and _upper_share(inner) > 0.7:
            return " "
        if re.match(r"\s*[A-Z]{4,}\s*:", inner):
            return " "  # (PROBE: Just your best guess.)
        if inner.strip().startswith(("Please consider", "Interviewer")):
            return inner + " "
        return m.group(0)

    return _CAPS_PAREN.sub(repl, text)


def _fill_alternatives(m: re.Match) -> str:
    parts = m.group(1).split("/")
    return " or ".join(parts) if len(parts) == 2 else parts[-1]


def normalise(question: str, raw_length: int | None = None) -> tuple[str, list[str]]:
    """(clean text, names of the rules that changed it).

    ``raw_length`` is the documentation text's length: at ``TRUNCATED_LENGTH`` or more an
    unpunctuated end is the export's field limit (the text was cut), so it is left for the lint
    and the curated wording instead of being closed by rule.
    """
    raw_length = len(question) if raw_length is None else raw_length
    rules: list[str] = []
    text = question

    def apply(name: str, new: str) -> None:
        nonlocal text
        if new != text:
            rules.append(name)
            text = new

    apply("doubled_apostrophe", text.replace("''", "'"))
    apply("repeated_clause", _REPEAT.sub(r"\1", text))
    apply("fill", _FILL.sub(lambda m: FILLS[m.group(1)], text))
    apply("alternative_fill", _SLASH_FILL.sub(_fill_alternatives, text))
    text = _ITEM_PLACEHOLDER.sub(_SLOT, text)  # protected from the capitals rules below
    apply("instruction", _CARD.sub(" ", text))
    apply("instruction", _drop_caps_parens(text))
    apply("instruction", _CAPS_SEGMENT.sub(" ", text))
    apply("dash", _DASHES.sub(" — ", text))
    apply("instruction", _FIRST.sub(lambda m: m.group(1).upper(), text))
    text = _SPACES.sub(" ", text).strip()
    apply("battery_item", _GLUED_LETTER.sub(". ", text))
    # Battery lettering: the last lettered segment is this variable's item; what precedes is the stem.
    letters = list(_ITEM_LETTER.finditer(text))
    if letters:
        last = letters[-1]
        stem, item = text[: last.start()] + last.group(1), text[last.end():]
        stem = _ITEM_LETTER.sub(lambda m: m.group(1), stem)  # earlier letters (sub-questions of the stem)
        stem, item = stem.strip(), item.strip()
        if _SLOT in stem:
            item_text = _lower_first(item.rstrip(".?"))
            text = stem.replace(_SLOT, item_text)
        elif not stem:
            text = item
        else:
            words = re.findall(r"[\w']+|…", _ELLIPSIS.sub(" … ", stem))
            if _ELLIPSIS.search(stem + " ") and words and words[-1] == "…" and len(words) > 1 and \
                    words[-2].lower() in _JOIN_WORDS:
                joined = _ELLIPSIS.sub(" ", stem).rstrip()
                first = item.split(" ", 1)
                if joined.lower().endswith(" " + first[0].lower()) and len(first) > 1:
                    item = first[1]  # "abortion if … If she is not married": one "if"
                text = joined + " " + _lower_first(item)
            else:
                stem = _ELLIPSIS.sub(" ", stem).strip().rstrip(",")
                if not stem.endswith(("?", ".", ":", "!")):
                    stem += ":"
                if item.endswith("?"):
                    text = f"{stem} {item}"
                else:
                    item = item if item.endswith((".", "!")) else item + "."
                    text = f'{stem} "{item}"'
        rules.append("battery_item")
    text = text.replace(_SLOT, "(ITEM)")  # a placeholder no item filled: left for the lint
    apply("ellipsis", _ELLIPSIS.sub(" … ", text))
    text = _SPACES.sub(" ", text).replace(" ?", "?").replace(" ,", ",").replace(" .", ".").strip()
    if raw_length < TRUNCATED_LENGTH and not text.endswith(_TERMINAL):
        head, tail = _split_tail(text)
        if head and len(tail.split()) <= 6 and tail.split()[0] in _LEAD_IN:
            apply("lead_in", head)  # "...health care system? Are you": the options finish the sentence
        elif not head and tail.split()[0] in _LEAD_IN:
            apply("lead_in", text + " …")
        else:
            apply("closing_punctuation", text + ".")
    return text, sorted(set(rules))


def _split_tail(text: str) -> tuple[str, str]:
    """(text up to the last sentence end, the rest)."""
    cut = max(text.rfind(c) for c in "?.:!)\"")
    if cut < 0:
        return "", text
    return text[: cut + 1].strip(), text[cut + 1:].strip()
