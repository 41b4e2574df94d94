"""Review of GSS candidates: the curated item-level decisions and the value-dimension tags.

Record-level rules are applied in code (``dataset_builder.gss.RULES``). Everything that needs
judgement -- is this an attitude or a behaviour, is it a near-duplicate, which value
dimensions does it measure -- is a curated decision with a reason, kept in YAML next to this
module so a reviewer can read and change it in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from culturesim.metrics.cultural_alignment import VALUE_DIMENSIONS

CURATION_DIR = Path(__file__).resolve().parent / "curation"
REVIEW_FILE = CURATION_DIR / "review.yaml"
DIMENSIONS_FILE = CURATION_DIR / "value_dimensions.yaml"
WVS_ENGLISH_FILE = CURATION_DIR / "wvs_english.yaml"
WVS_NATIVE_FILE = CURATION_DIR / "wvs_native.yaml"
GSS_TEXT_FILE = CURATION_DIR / "gss_text.yaml"
LINT_ALLOW_FILE = CURATION_DIR / "lint_allow.yaml"
CONSTRUCT_FILE = CURATION_DIR / "construct.yaml"
WORDING_REVIEW_FILE = CURATION_DIR / "wording_review.yaml"

#: What a scored row measures. Classes outside SCORED_CONSTRUCTS never enter a scored config.
SCORED_CONSTRUCTS = ("attitude", "value", "belief", "preference")
UNSCORED_CONSTRUCTS = ("behaviour", "experience", "fact")
#: The written rule that decides an item's class (rendered in the card); the curated file
#: ``construct.yaml`` records its outcome per variable with a reason.
CONSTRUCT_RULE: tuple[tuple[str, str], ...] = (
    ("behaviour", "the answer reports what the respondent does or did: attendance, prayer, media and internet use, "
                  "drug use, sexual behaviour, vaccination, household tasks, how their work is organised, vote recall "
                  "and vote intention. Excluded."),
    ("experience", "the answer reports what happened to the respondent or their own condition: health, mood in recent "
                   "weeks, discrimination met, conditions of their own job, treatment received, their own finances. "
                   "Excluded."),
    ("fact", "the answer is a fact about the respondent or their household: gun ownership, internet access, union "
             "membership, life history, a sexual partner's sex, self-placement in the class hierarchy or of their "
             "femininity or masculinity. Excluded."),
    ("value", "otherwise, if the answer says what ought to be or what matters in itself: a moral judgement "
              "('always wrong', 'has the right'), what women, men or parents should do, the importance of a quality "
              "or duty, a political or religious orientation."),
    ("preference", "otherwise, if the answer chooses among alternatives for society or oneself: spending more or "
                   "less, one policy or law over another, an ideal number of children, a party."),
    ("belief", "otherwise, if the answer says what the respondent thinks is or will be the case: a perception of "
               "society, a cause, a likelihood, trust in people, a religious belief."),
    ("attitude", "otherwise: an evaluation of an object (favour or oppose, confidence in an institution, "
                 "satisfaction, pride, agreement with an evaluative statement)."),
)

# Ordered answer scales, recognised by the words of their options (GSS labels are lower case).
_ORDINAL_PATTERNS = [
    r"\bagree\b", r"\bdisagree\b", r"\btoo (much|little)\b", r"\babout right\b", r"\bvery\b", r"\bsomewhat\b",
    r"\bfairly\b", r"\bnot at all\b", r"\bnot (very|too)\b", r"\balways\b", r"\bnever\b", r"\boften\b",
    r"\bsometimes\b", r"\brarely\b", r"\b(more|less|better|worse)\b", r"\blikely\b", r"\bgreat deal\b",
    r"\bonly some\b", r"\bhardly any\b", r"\bdefinitely\b", r"\bprobably\b", r"\bstrongly\b", r"\bslightly\b",
    r"\bexcellent\b", r"\bgood\b", r"\bfair\b", r"\bpoor\b", r"\bsatisfied\b", r"\bimportant\b", r"\bhappy\b",
    r"\bextremely\b", r"\bliberal\b", r"\bconservative\b", r"\bincrease\b", r"\breduce\b", r"\bmuch\b",
    r"\bwrong\b", r"\bconfident\b", r"\bworried\b", r"\bconcerned\b", r"^\s*\d+\s*$", r"\bmost\b", r"\bfew\b",
    r"\ball\b", r"\bnone\b", r"\bsome\b", r"\bhigh\b", r"\blow\b", r"\bmiddle\b", r"\bdepends\b",
]
_ORDINAL_RE = re.compile("|".join(_ORDINAL_PATTERNS), re.IGNORECASE)


class CurationError(ValueError):
    """A curated file is missing an entry or holds an invalid one."""


@dataclass(frozen=True)
class Tag:
    dimensions: tuple[str, ...]
    rationale: str


def is_ordinal(options: list[str]) -> bool:
    """Two options are trivially ordered; longer lists when most options read as scale points."""
    if len(options) == 2:
        return True
    hits = sum(1 for o in options if _ORDINAL_RE.search(o))
    return hits >= max(2, len(options) - 1)


def is_numeric_scale(options: list[str]) -> bool:
    """Numbered scale points with words only at the ends (e.g. 1 'strongly agree' ... 7)."""
    bare = sum(1 for o in options if o.strip().isdigit())
    return len(options) >= 5 and bare >= len(options) - 2


def load_yaml_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise CurationError(f"Curated file {path} is missing; it is part of the repository.")
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}


def load_review(path: Path = REVIEW_FILE) -> dict[str, dict[str, str]]:
    """{"gss:<variable>" | "wvs:<Q>": {decision: include|exclude, reason}} for every reviewed item."""
    data = load_yaml_file(path)
    for var, entry in data.items():
        if entry.get("decision") not in ("include", "exclude"):
            raise CurationError(f"{path}: {var!r} has decision {entry.get('decision')!r}; use include or exclude")
        if not str(entry.get("reason", "")).strip():
            raise CurationError(f"{path}: {var!r} has no reason; every decision needs one")
    return data


@dataclass(frozen=True)
class Construct:
    kind: str  # one of SCORED_CONSTRUCTS or UNSCORED_CONSTRUCTS
    reason: str

    @property
    def scored(self) -> bool:
        return self.kind in SCORED_CONSTRUCTS


def load_constructs(path: Path = CONSTRUCT_FILE) -> dict[str, Construct]:
    """{GSS variable: Construct}: the class each variable gets under CONSTRUCT_RULE, with why."""
    out = {}
    allowed = SCORED_CONSTRUCTS + UNSCORED_CONSTRUCTS
    for var, entry in load_yaml_file(path).items():
        kind = (entry or {}).get("class")
        if kind not in allowed:
            raise CurationError(f"{path}: {var!r} has class {kind!r}; use one of {', '.join(allowed)}")
        reason = str(entry.get("reason") or "").strip()
        if not reason:
            raise CurationError(f"{path}: {var!r} has no reason; say why it is a {kind}")
        out[str(var)] = Construct(kind, reason)
    return out


def load_tags(path: Path = DIMENSIONS_FILE) -> dict[str, Tag]:
    """{"gss:<variable>" | "wvs:<Q>": Tag}; an empty tag list needs a none_reason."""
    tags = {}
    for key, entry in load_yaml_file(path).items():
        dims = tuple(entry.get("dimensions") or ())
        bad = [d for d in dims if d not in VALUE_DIMENSIONS]
        if bad:
            raise CurationError(f"{path}: {key!r} has unknown dimension(s) {bad}; choose from {' '.join(VALUE_DIMENSIONS)}")
        rationale = str(entry.get("rationale") or entry.get("none_reason") or "").strip()
        if not rationale:
            raise CurationError(f"{path}: {key!r} needs a rationale (or none_reason when it has no dimension)")
        tags[key] = Tag(dims, rationale)
    return tags


def wording_review(row_ids: set[str], path: Path = WORDING_REVIEW_FILE) -> dict[str, Any]:
    """The hand review of the rows' wording (changed rows and a seeded 10% sample), checked against the
    built rows: every reviewed id is a row, every verdict is ok or fixed, a fix says what was wrong.
    Returned as the build report lists it: {section: [{item, verdict, note}]} and the counts."""
    data = load_yaml_file(path)
    out: dict[str, Any] = {}
    for section in ("changed", "sample"):
        entries = []
        for item, entry in sorted((data.get(section) or {}).items()):
            verdict, note = (entry or {}).get("verdict"), str((entry or {}).get("note") or "").strip()
            if item not in row_ids:
                raise CurationError(f"{path}: {section} item {item!r} is not a built row; review rows that exist")
            if verdict not in ("ok", "fixed"):
                raise CurationError(f"{path}: {item!r} has verdict {verdict!r}; use ok or fixed")
            if verdict == "fixed" and not note:
                raise CurationError(f"{path}: {item!r} is fixed without a note saying what was wrong")
            entries.append({"item": item, "verdict": verdict, "note": note})
        out[section] = entries
    out["counts"] = {s: {"rows": len(out[s]), "fixed": sum(e["verdict"] == "fixed" for e in out[s])}
                     for s in ("changed", "sample")}
    return out
