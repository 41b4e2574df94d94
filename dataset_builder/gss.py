"""GSS 2022 adapter: variables -> candidate questions with human distributions.

The GSS documentation tabulates unweighted answer counts per label and year; only the
labels listed in a variable's ``values`` are substantive, so everything else (iap, don't
know, no answer, skipped on web, can't choose, refused, not available in this year) is
dropped before renormalising. The rules that can be decided from the record alone live
here (``RULES``); item-level judgements live in the curated overrides file.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

YEAR = "2022"  # the default wave; every function takes ``year``
YEARS = ("2022", "2024")
MIN_RESPONDENTS = 200
MIN_OPTIONS, MAX_OPTIONS = 2, 11

# GSS topic modules that never hold attitudes, values, beliefs or preferences.
EXCLUDED_FAMILIES: dict[str, str] = {
    "Paradata": "paradata about the interview",
    "Interview": "interviewer-recorded item",
    "Sampling and Weights": "sampling or weighting variable",
    "Household Members and Structure": "household roster",
    "Vocabulary": "knowledge test (vocabulary)",
    "Vocabulary Test": "knowledge test (vocabulary)",
}

# Suffixes the GSS uses for the same item asked in another mode: web versions without ("nv")
# or with ("v") volunteered answers, web grids ("g"), follow-on and experimental versions.
# Wording versions ("x", "y": split-ballot wording experiments put to different respondents,
# e.g. "welfare" vs "assistance to the poor") are distinct questions and are kept.
MODE_VARIANT_SUFFIXES = ("nv", "_next", "_exp", "g", "v")

RULES: dict[str, str] = {
    "not_asked": "not asked in this GSS year",
    "too_few_options": f"fewer than {MIN_OPTIONS} substantive answer options",
    "too_many_options": f"more than {MAX_OPTIONS} substantive answer options (open numeric or long code list)",
    "too_few_respondents": f"fewer than {MIN_RESPONDENTS} substantive answers in the year",
    "excluded_family": "belongs to a GSS module that holds no attitudes (see EXCLUDED_FAMILIES)",
    "mode_variant": "near-duplicate mode/wording variant of another GSS item; the base form is kept",
    "missing_labels": "a substantive option label has no count in the tabulation",
}


@dataclass
class GssVariable:
    """One variable of the GSS documentation file, with one year's substantive counts."""

    variable: str
    label: str
    question: str
    codes: list[int]
    options: list[str]
    families: list[str]
    counts: list[int] = field(default_factory=list)
    total: int = 0
    year: str = YEAR
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return sum(self.counts)


_NUMERIC_KEY = re.compile(r"\d+")


def restore_unlabelled_points(values: list[tuple[int, str]], counts: dict[str, Any]) -> list[tuple[int, str]]:
    """Add the scale points the documentation leaves unlabelled (e.g. 2..6 of a 1-7 scale).

    The tabulation keys such points by their bare code ("2", "3", ...); without them the
    distribution would hold only the scale's ends.
    """
    labels = {lbl for _, lbl in values}
    codes = {c for c, _ in values}
    extra = [(int(k), k) for k in counts if _NUMERIC_KEY.fullmatch(k) and k not in labels and int(k) not in codes]
    if not extra:
        return values
    return sorted(values + extra)


def read_variables(path: str | Path, year: str = YEAR) -> list[GssVariable]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                log.warning("%s line %d: not JSON (%s); skipped", path, line_no, exc)
                continue
            values = [(int(c), str(lbl)) for c, lbl in rec.get("values") or []]
            counts_year = (rec.get("counts_by_year") or {}).get(year) or {}
            values = restore_unlabelled_points(values, counts_year)
            out.append(
                GssVariable(
                    variable=rec["variable"],
                    label=rec.get("label") or "",
                    question=(rec.get("question") or "").strip(),
                    codes=[c for c, _ in values],
                    options=[lbl for _, lbl in values],
                    families=list(rec.get("families") or []),
                    counts=[int(counts_year.get(lbl, 0) or 0) for _, lbl in values],
                    total=int(counts_year.get("Total", 0) or 0),
                    year=year,
                    raw=rec,
                )
            )
    return out


# Answer labels that exist only in another interview mode (volunteered on the phone) or as a
# residual; when the year's tabulation lacks them, nobody could give them that year.
MODE_ONLY_LABEL = _MODE_ONLY_LABEL = re.compile(r"phone mode only|volunteered|^other$|^does not apply$|\(vol\.?\)", re.IGNORECASE)

#: Answer labels that are no position on the question (the respondent declined or could not say).
#: Never offered to a model: their answers are counted in ``volunteered_share`` instead.
NONSUBSTANTIVE_OPTION = re.compile(r"\brefused\b|don't know|can't remember|can't choose|^no answer$|^(it )?depends\b",
                                   re.IGNORECASE)
#: Above this share of those asked answering outside the row's options (volunteered answers such as
#: "depends", "as many as you want", and don't know / no answer / refused / can't choose), the row is
#: excluded. Why 0.15: whatever those people would have chosen, the distribution over everyone asked
#: is within total variation ``volunteered_share`` of the published one, and 0.15 is about the
#: largest gap that still leaves the modal answer of most items unchanged; below it the row is kept
#: and the share is a column, so a user can set a stricter cut.
MAX_VOLUNTEERED_SHARE = 0.15
#: Tabulation labels of people who were not asked (or not in the file): outside "those asked".
NOT_ASKED_LABELS = ("iap", "not available in this year", "not available in this release", "Total")


def not_offered(variable: str, label: str) -> bool:
    """Whether an answer label was not offered as an option: a non-answer (``NONSUBSTANTIVE_OPTION``),
    or a volunteered (phone-only) answer of an ``nv`` form, the GSS's "no volunteered answers" web
    version, which did not show it (the ``v`` form did; both forms stay as two different prompts)."""
    return bool(NONSUBSTANTIVE_OPTION.search(label) or (variable.endswith("nv") and MODE_ONLY_LABEL.search(label)))


def volunteered_share(var: GssVariable, kept_labels: list[str]) -> float | None:
    """Share of those asked whose answer is not one of ``kept_labels`` (the row's options).

    From the documentation's unweighted tabulation, the only source that separates don't know,
    no answer, refused and skipped from "not asked" (the year files code all of them NA). None when
    the tabulation has no answers for the year.
    """
    counts = (var.raw.get("counts_by_year") or {}).get(var.year) or {}
    asked = sum(int(n or 0) for label, n in counts.items() if label not in NOT_ASKED_LABELS)
    if not asked:
        return None
    kept = sum(int(counts.get(label, 0) or 0) for label in set(kept_labels))
    return 1.0 - kept / asked


def drop_mode_only_options(var: GssVariable) -> list[str]:
    """Remove options absent from the year's tabulation because they were phone-only or residual."""
    counts = (var.raw.get("counts_by_year") or {}).get(var.year) or {}
    dropped = [o for o in var.options if o not in counts and _MODE_ONLY_LABEL.search(o)]
    if dropped:
        keep = [i for i, o in enumerate(var.options) if o not in dropped]
        var.options = [var.options[i] for i in keep]
        var.codes = [var.codes[i] for i in keep]
        var.counts = [var.counts[i] for i in keep]
    return dropped


def rule_exclusion(var: GssVariable) -> str | None:
    """The first record-level rule the variable fails, or None."""
    counts = (var.raw.get("counts_by_year") or {}).get(var.year)
    if not counts:
        return "not_asked"
    if len(var.options) < MIN_OPTIONS:
        return "too_few_options"
    if len(var.options) > MAX_OPTIONS:
        return "too_many_options"
    if any(lbl not in counts for lbl in var.options):
        return "missing_labels"
    if var.n < MIN_RESPONDENTS:
        return "too_few_respondents"
    if any(f in EXCLUDED_FAMILIES for f in var.families):
        return "excluded_family"
    return None


def mode_variant_of(name: str, candidates: dict[str, GssVariable]) -> str | None:
    """If ``name`` is a suffixed variant of another candidate, that candidate's name."""
    for suffix in MODE_VARIANT_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in candidates:
            return name[: -len(suffix)]
    return None


def resolve_mode_variants(candidates: dict[str, GssVariable]) -> dict[str, str]:
    """Map each dropped variant to the variable kept in its place.

    The base form is kept: it carries the full questionnaire wording and the long time series,
    while the suffixed forms are web, grid or experimental versions (some with truncated text).
    """
    dropped: dict[str, str] = {}
    for name in sorted(candidates):
        base = mode_variant_of(name, candidates)
        if base is not None:
            dropped[name] = base
    return dropped


def candidates(
    path: str | Path, repairs: dict[str, str] | None = None, year: str = YEAR
) -> tuple[dict[str, GssVariable], dict[str, tuple[str, str]]]:
    """Variables passing the record-level rules, and {variable: (rule, detail)} for the rest.

    ``repairs`` (if given) receives {variable: what was repaired}.
    """
    excluded: dict[str, tuple[str, str]] = {}
    kept: dict[str, GssVariable] = {}
    for var in read_variables(path, year):
        dropped = drop_mode_only_options(var)
        if dropped and repairs is not None:
            repairs[var.variable] = f"options {dropped} absent from the {year} tabulation (phone-only or residual) removed"
        rule = rule_exclusion(var)
        if rule:
            if rule != "not_asked":
                excluded[var.variable] = (rule, RULES[rule])
            continue
        kept[var.variable] = var
    for drop, keep in resolve_mode_variants(kept).items():
        excluded[drop] = ("mode_variant", f"{RULES['mode_variant']} (kept {keep!r})")
        kept.pop(drop, None)
    return kept, excluded
