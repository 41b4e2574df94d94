"""GSS year files (respondent microdata) -> weighted distributions, breakdowns and the ceiling.

The GSS documentation tabulates unweighted counts; a population estimate needs the survey
weight. For each question this module takes the cross-section respondents of one year file
(rows with a ``wtssps`` weight: the post-stratified person weight NORC recommends) who gave a
substantive answer, and forms from exactly those respondents and that weight:

- the overall answer distribution (``human_distribution``) and their unweighted count
  (``human_n``);
- the distributions by sex and by age group, each with its unweighted n and its share of the
  weight of the respondents whose sex (age) is known, so the groups mix back to the overall
  distribution of those respondents (a group under ``MIN_GROUP_N`` is left out on its own);
- the split-half ceiling: the respondents split at random into two halves ``SPLITS`` times,
  the halves' weighted distributions scored against each other with the metric module.

Before any of that the observed codes are checked against the documented ones
(``check_codes``): a column whose codes are shifted (coded 1-8 where the documentation says
0-8) or unknown is repaired or excluded, never passed on.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from culturesim.metrics.cultural_alignment import compute_alignment

WEIGHT = "wtssps"
AGE_GROUPS: tuple[tuple[str, int, int], ...] = (("18-29", 18, 29), ("30-49", 30, 49), ("50+", 50, 200))
SEX_GROUPS: dict[int, str] = {2: "female", 1: "male"}
#: A group with fewer substantive answers than this gets no distribution of its own (its
#: share would move by more than 0.09 between two samples of this size at p = 0.5).
MIN_GROUP_N = 30
#: Random split-halves per question for the human ceiling.
SPLITS = 100
#: Tolerances for the documented-vs-observed code check: total variation distance between the
#: unweighted microdata shares and the documentation's shares, and relative difference of n.
CODE_CHECK_TV = 0.02
CODE_CHECK_N = 0.05
#: Code shifts tried when the observed codes are not the documented ones.
SHIFTS = (-1, 1)


class MicrodataError(ValueError):
    """A year file lacks what the build needs."""


def read_year_file(path: str | Path) -> pd.DataFrame:
    """The cross-section respondents (rows with a ``wtssps`` weight) of one GSS year file."""
    import pyreadr

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"GSS year file {path} not found; see ../shared/sources/README.md (gss/)")
    frame = next(iter(pyreadr.read_r(str(path)).values()))
    missing = {WEIGHT, "sex", "age"} - set(frame.columns)
    if missing:
        raise MicrodataError(f"{path} lacks the columns {sorted(missing)}; a GSS year file has wtssps, sex and age")
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
    ceiling: dict[str, float | None]


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


def split_halves(codes: np.ndarray, weights: np.ndarray, option_codes: list[int], splits: int,
                 seed_text: str) -> tuple[np.ndarray, np.ndarray]:
    """``splits`` pairs of weighted half-sample distributions (two arrays of shape (splits, k)).

    Each split assigns a random half of the respondents (``n // 2``) to A and the rest to B. The
    generator is seeded from ``seed_text`` (the question id) so a question's ceiling does not
    change when other questions are added or removed.
    """
    rng = np.random.default_rng(zlib.crc32(seed_text.encode("utf-8")))
    n, k = len(codes), len(option_codes)
    pos = positions(codes, option_codes)
    half = n // 2
    chosen = np.argpartition(rng.random((splits, n)), half - 1, axis=1)[:, :half]
    cells = (pos[chosen] + k * np.arange(splits)[:, None]).ravel()
    a = np.bincount(cells, weights=weights[chosen].ravel(), minlength=splits * k).reshape(splits, k)
    b = np.bincount(pos, weights=weights, minlength=k)[None, :] - a
    b = np.clip(b, 0.0, None)  # exact zeros where a cell's whole weight fell in A
    return a / a.sum(axis=1, keepdims=True), b / b.sum(axis=1, keepdims=True)


def ceilings(halves: list[tuple[np.ndarray, np.ndarray]], ordinal: list[bool]) -> list[dict[str, float | None]]:
    """Mean and standard deviation over splits of KL(A||B), JS and Wasserstein, per question.

    Scored in one call of the metric module (``compute_alignment``), so the ceiling is the same
    divergence, with the same smoothing, as a model's score.
    """

    if not halves:
        return []
    probs, refs, ords, spans = [], [], [], []
    for (a, b), o in zip(halves, ordinal):
        spans.append((len(probs), len(probs) + len(a)))
        probs.extend(a.tolist())
        refs.extend(b.tolist())
        ords.extend([o] * len(a))
    scores = compute_alignment(probabilities=probs, references=refs, ordinal=ords, bootstrap_samples=0,
                               return_per_question=True)["per_question"]
    out = []
    for (lo, hi), o in zip(spans, ordinal):
        rows = scores[lo:hi]
        entry: dict[str, float | None] = {}
        for key in ("kl", "js", "wasserstein"):
            if key == "wasserstein" and not o:
                entry[key] = entry[f"{key}_sd"] = None
                continue
            vals = np.array([r[key] for r in rows], dtype=float)
            entry[key] = float(vals.mean())
            entry[f"{key}_sd"] = float(vals.std(ddof=1))
        out.append(entry)
    return out
