"""GSS year files (respondent microdata) -> weighted distributions, breakdowns and design effects.

The GSS documentation tabulates unweighted counts; a population estimate needs the survey
weight. For each question this module takes the cross-section respondents of one year file
(rows with a ``wtssps`` weight: the post-stratified person weight NORC recommends) who gave a
substantive answer, and forms from exactly those respondents and that weight:

- the overall answer distribution (``human_distribution``) and their unweighted count
  (``human_n``);
- the distributions by sex and by age group, each with its unweighted n and its share of the
  weight of the respondents whose sex (age) is known, so the groups mix back to the overall
  distribution of those respondents (a group under ``MIN_GROUP_N`` is left out on its own);
- the Kish design effect of those weights (``design_effect``) and the effective n it implies,
  so the metric can carry the survey's own sampling noise (a weighted estimate from n answers is
  as precise as a simple random sample of n / deff).

The weight is ``wtssps`` unless the item was asked only in a 2022 sub-sample: the NEA arts
module and the "GSS Next" items went to random sub-samples of the cross-section, and NORC ships
a weight for each (``wtssps_nea``, ``wtssps_next``) that post-stratifies that sub-sample to the
population. ``item_weight`` picks the smallest such sub-sample that holds every respondent who
answered; weighting those answers with ``wtssps`` would describe the sub-sample's skew instead.

Before any of that the observed codes are checked against the documented ones
(``check_codes``): a column whose codes are shifted (coded 1-8 where the documentation says
0-8) or unknown is repaired or excluded, never passed on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

WEIGHT = "wtssps"
#: The sub-sample weights of a year file: name in the respondents configs -> year-file column.
#: Each is non-null exactly for the cross-section respondents of its sub-sample.
SUBSAMPLE_WEIGHTS: dict[str, str] = {"weight_nea": "wtssps_nea", "weight_next": "wtssps_next"}
#: The respondents configs' name for the cross-section weight ``WEIGHT``.
CROSS_SECTION_WEIGHT = "weight"
AGE_GROUPS: tuple[tuple[str, int, int], ...] = (("18-29", 18, 29), ("30-49", 30, 49), ("50+", 50, 200))
SEX_GROUPS: dict[int, str] = {2: "female", 1: "male"}
#: A group with fewer substantive answers than this gets no distribution of its own (its
#: share would move by more than 0.09 between two samples of this size at p = 0.5).
MIN_GROUP_N = 30
#: Tolerances for the documented-vs-observed code check: total variation distance between the
#: unweighted microdata shares and the documentation's shares, and relative difference of n.
CODE_CHECK_TV = 0.02
CODE_CHECK_N = 0.05
#: Code shifts tried when the observed codes are not the documented ones.
SHIFTS = (-1, 1)


class MicrodataError(ValueError):
    """A year file lacks what the build needs."""


def read_year_file(path: str | Path) -> pd.DataFrame:
    """The cross-section respondents (rows with a ``wtssps`` weight) of one GSS year file, in file order."""
    import pyreadr

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"GSS year file {path} not found; see ../shared/sources/README.md (gss/)")
    frame = next(iter(pyreadr.read_r(str(path)).values()))
    missing = {"id", WEIGHT, "sex", "age"} - set(frame.columns)
    if missing:
        raise MicrodataError(f"{path} lacks the columns {sorted(missing)}; a GSS year file has id, wtssps, sex and age")
    frame = frame[frame[WEIGHT].notna()].reset_index(drop=True)
    return frame


@dataclass
class CodeCheck:
    """Outcome of comparing a column's observed codes with the documentation."""

    action: str  # "ok", "repaired" or "excluded"
    detail: str = ""
    shift: int = 0


def _tv(a: np.ndarray, b: np.ndarray) -> float:
    return float(0.5 * np.abs(a / max(a.sum(), 1) - b / max(b.sum(), 1)).sum())


def check_codes(values: np.ndarray, codes: list[int], documented_counts: list[int]) -> CodeCheck:
    """Are the observed codes the documented ones, with the documented counts?

    ``values`` are the non-missing codes of the cross-section respondents. The observed codes must
    be a subset of ``codes`` and their unweighted shares and total must agree with the
    documentation's tabulation (``documented_counts``, same order as ``codes``) within
    ``CODE_CHECK_TV`` / ``CODE_CHECK_N``; otherwise a shift by one code is tried (the 2020 panel's
    ``attend`` was coded 1-8 for 0-8) and kept only if it passes both checks.
    """
    doc = np.asarray(documented_counts, dtype=float)
    code_set = set(codes)

    def agrees(vals: np.ndarray) -> tuple[bool, str]:
        observed = set(np.unique(vals).astype(int).tolist())
        if not observed <= code_set:
            return False, f"codes {sorted(observed - code_set)} are not documented (documented: {codes})"
        counts = np.array([(vals == c).sum() for c in codes], dtype=float)
        tv, n_doc = _tv(counts, doc), doc.sum()
        if n_doc > 0 and abs(counts.sum() - n_doc) / n_doc > CODE_CHECK_N:
            return False, f"{int(counts.sum())} answers in the microdata but {int(n_doc)} in the documentation"
        if tv > CODE_CHECK_TV:
            return False, f"unweighted shares differ from the documentation's by {tv:.3f} (total variation)"
        return True, ""

    ok, why = agrees(values)
    if ok:
        return CodeCheck("ok")
    for shift in SHIFTS:
        shifted_ok, _ = agrees(values + shift)
        if shifted_ok:
            return CodeCheck("repaired", f"microdata codes are shifted by {-shift:+d} against the documentation "
                             f"({why}); shifted back by {shift:+d}, after which codes and counts agree", shift)
    return CodeCheck("excluded", f"microdata disagree with the documentation: {why}; no shift by one code repairs it")


def positions(codes: np.ndarray, option_codes: list[int]) -> np.ndarray:
    """Index of each code in ``option_codes`` (every code must be one of them)."""
    opt = np.asarray(option_codes)
    order = np.argsort(opt, kind="stable")
    return order[np.searchsorted(opt[order], codes)]


def weighted_shares(codes: np.ndarray, weights: np.ndarray, option_codes: list[int]) -> np.ndarray:
    """Sum of the weights per option (not normalised)."""
    return np.bincount(positions(codes, option_codes), weights=weights, minlength=len(option_codes))


@dataclass
class Estimate:
    """Everything one question's microdata give."""

    distribution: list[float]
    n: int
    demographics: list[dict[str, Any]]


def group_masks(frame: pd.DataFrame) -> list[tuple[str, str, np.ndarray]]:
    sex = frame["sex"].to_numpy()
    age = frame["age"].to_numpy()
    out = [("sex", name, sex == code) for code, name in SEX_GROUPS.items()]
    out += [("age", name, (age >= lo) & (age <= hi)) for name, lo, hi in AGE_GROUPS]
    return out


def demographics(codes: np.ndarray, weights: np.ndarray, masks: list[tuple[str, str, np.ndarray]],
                 option_codes: list[int], year: int) -> list[dict[str, Any]]:
    """[{group_type, group, year, n, weight_share, distribution}] for the groups with n >= MIN_GROUP_N.

    ``weight_share`` is the group's share of the weight of the respondents whose group type is
    known (sex, or age), so sum(weight_share * distribution) over a complete family is the
    overall distribution of those respondents.
    """
    known: dict[str, float] = {}
    for group_type, _, mask in masks:
        known[group_type] = known.get(group_type, 0.0) + float(weights[mask].sum())
    out = []
    for group_type, group, mask in masks:
        n = int(mask.sum())
        if n < MIN_GROUP_N:
            continue
        shares = weighted_shares(codes[mask], weights[mask], option_codes)
        total = float(shares.sum())
        out.append({"group_type": group_type, "group": group, "year": year, "n": n,
                    "weight_share": total / known[group_type], "distribution": (shares / total).tolist()})
    return out


def weight_columns(frame: pd.DataFrame) -> dict[str, str]:
    """Respondents-config weight name -> year-file column, for the weights this year file has
    (``weight`` always; ``weight_nea`` and ``weight_next`` only where the file ships them)."""
    out = {CROSS_SECTION_WEIGHT: WEIGHT}
    out.update({name: col for name, col in SUBSAMPLE_WEIGHTS.items() if col in frame.columns})
    return out


def item_weight(frame: pd.DataFrame, answered: np.ndarray, item: str) -> str:
    """The respondents-config weight name that estimates ``item``'s distribution.

    ``answered`` marks the cross-section respondents (rows of ``frame``) who gave a substantive
    answer. If all of them lie in one sub-sample with its own weight, that weight: the item was
    asked only there (by chance alone, 200 answers all falling in a sub-sample of a third of the
    cross-section has probability below 1e-90). Otherwise the cross-section weight.
    """
    inside = []
    for name, col in weight_columns(frame).items():
        if name == CROSS_SECTION_WEIGHT:
            continue
        member = frame[col].notna().to_numpy()
        if answered.any() and not (answered & ~member).any():
            inside.append((int(member.sum()), name))
    if not inside:
        return CROSS_SECTION_WEIGHT
    inside.sort()
    if len(inside) > 1 and inside[0][0] == inside[1][0]:
        raise MicrodataError(f"{item}: its respondents lie in two sub-samples of equal size ({inside}); "
                             "decide which sub-sample asked it from the GSS documentation and add that rule to item_weight")
    return inside[0][1]


def design_effect(weights: np.ndarray) -> float:
    """Kish's design effect of unequal weights, n * sum(w^2) / sum(w)^2 (1 for equal weights).

    Only the weighting part of the design effect: the year files carry no strata or cluster
    codes usable here, so clustering is not in it and the true effect is, if anything, larger.
    """
    w = np.asarray(weights, dtype=float)
    if len(w) == 0 or not np.isfinite(w).all() or (w <= 0).any():
        raise MicrodataError(f"design effect needs positive finite weights; got {len(w)} weights "
                             f"with min {w.min() if len(w) else None}")
    return float(len(w) * np.dot(w, w) / w.sum() ** 2)
