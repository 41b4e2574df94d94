"""Review of GSS candidates: the curated item-level decisions and the value-dimension tags.

Record-level rules are applied in code (``dataset_builder.gss.RULES``). Everything that needs
judgement -- is this an attitude or a behaviour, is it a near-duplicate, which value
dimensions does it measure -- is a curated decision with a reason, kept in YAML next to this
module so a reviewer can read and change it in one place.
"""

from __future__ import annotations

import re
from collections import Counter
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


#: Words that make a tag's rationale about this dataset instead of the construct (dataset 2.0 had 42).
META_RATIONALE = re.compile(r"as (?:defined|operationali[sz]ed|used) (?:for|in|by|here)\b[^.;,)]*|\bthis dataset\b|\bthe brief\b",
                            re.IGNORECASE)


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
        meta = META_RATIONALE.search(rationale)
        if meta:
            raise CurationError(f"{path}: {key!r} rationale says {meta.group(0)!r}; name the construct of the literature "
                                "(Hofstede, Minkov, Schwartz, Inglehart-Welzel) the item measures, not how this dataset uses it")
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


def scope_section(rows: list[dict[str, Any]], report: dict[str, Any], max_volunteered: float) -> str:
    """Card text for what a GSS row is (dataset 3.0): the construct rule, the universe rule, the options
    rule with its threshold, and the GSS rows before and after each of these exclusions, per year."""
    years = sorted({r["source_year"] for r in rows if r["source"] == "GSS"})
    kept = Counter(r["source_year"] for r in rows if r["source"] == "GSS")
    out_by = {rule: Counter(int(e["item"][3:7]) for e in report.get("excluded", ())
                            if e["item"].startswith("gss") and e["rule"] == rule)
              for rule in ("not_an_attitude", "volunteered_share")}
    table = ["| GSS year | reach the construct check | not an attitude (excluded) | after the construct rule | "
             "volunteered share above the threshold (excluded) | scored rows |", "| --- | --- | --- | --- | --- | --- |"]
    for y in years:
        after_options = kept[y]
        after_construct = after_options + out_by["volunteered_share"][y]
        before = after_construct + out_by["not_an_attitude"][y]
        table.append(f"| {y} | {before} | {out_by['not_an_attitude'][y]} | {after_construct} | "
                     f"{out_by['volunteered_share'][y]} | {after_options} |")
    classes = Counter(r["construct"] for r in rows if r.get("construct"))
    universes = Counter(r["universe"] for r in rows if r.get("universe"))
    rule = "\n".join(f"{i}. **{kind}**: {text}" for i, (kind, text) in enumerate(CONSTRUCT_RULE, 1))
    uni = "\n".join(f"- \"{u}\" ({n} rows)" for u, n in sorted(universes.items()))
    review = report.get("wording_review", {}).get("counts", {})
    changed, sample = review.get("changed", {}), review.get("sample", {})
    return f"""## What a row is: construct, universe, options (dataset 3.0)

**Construct.** Every scored row is an attitude, a value, a belief or a preference (`construct`).
The class of each GSS variable is recorded with its reason in `curation/construct.yaml` and
decided by this rule, applied in order (the first that fits):

{rule}

Rows by class: {", ".join(f"{k} {v}" for k, v in sorted(classes.items()))}. Behaviours,
experiences and facts are in no config; the build report lists each with rule `not_an_attitude`
and the reason.

**Universe.** A GSS question put only to a sub-population (the employed, the married, Catholics,
...) carries who was asked in `universe`, a sentence the simulator puts before the question
("You are married. Taking things all together, ..."), so the simulated participants are the same
kind of people as the respondents. The build measures, in the year file, the share of respondents
who answered within the random-design cells (ballot × form × ISSP sub-sample × mode × GSS Next
sub-sample) where the item was asked, corrected for those asked who gave no answer; an item below
0.80 was filtered, and the build stops unless `curation/universe.yaml` names its universe with a
filter on the year file that holds ≥ 95% of those who answered and of which ≥ 80% answered
(`dataset_builder/universe.py`); otherwise the item is excluded with its reason. Universes:

{uni}

**Options.** No option is a non-answer (refused, don't know, can't remember, can't choose, no
answer, "depends") and none is an answer nobody gave in the year (a phone-only volunteered answer
the web form did not show; the `nv` web forms never offer the volunteered answer, the `v` forms
do, so their prompts differ as the questionnaire did). `volunteered_share` is the share of those
asked whose answer was removed this way or was don't know, no answer, refused, can't choose or
skipped, from the documentation's unweighted counts. A row above {max_volunteered:.0%} is excluded
(rule `volunteered_share`): whatever those people would have chosen, the distribution over all
who were asked is within total variation `volunteered_share` of the published one, and above
{max_volunteered:.2f} that gap can change which answer is the most common one. Examples excluded:
`aged` ("depends" 21%), `chldidel` ("as many as you want" 24% and 26%); kept with their share:
`trust` and `fair` (9%).

{chr(10).join(table)}

**One row per prompt.** Two rows of one config with the same question and the same options (in
any order, since options are shown shuffled) and different human distributions stop the build
(lint kind `duplicate_prompt`).

**Wording read by hand.** Every GSS row whose text or options changed in 3.0
({changed.get("rows", 0)} rows) and a seeded random 10% of the others ({sample.get("rows", 0)}
rows, {sample.get("fixed", 0)} of them then fixed) were read as a respondent would; each verdict and
note is in `curation/wording_review.yaml` and the build report (`wording_review`).
"""
