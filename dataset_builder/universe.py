"""Who was asked a GSS question: the universe, from the year file's skip pattern.

Some GSS items are put only to a sub-population (the employed for the Quality of Working Life
block, the married for ``hapmar``, Catholics for ``popespks`` ...). Their human distribution
describes that sub-population, so the model must be told it is one of them: the row carries a
``universe`` sentence ("You are married.") that the simulator puts in the prompt.

Random split ballots, forms, interview modes and sub-samples also leave most respondents
unasked, so "not everyone answered" is not evidence of a filter. This module measures the
answer rate *within the random-design cells where the item was asked* (ballot x form x ISSP
sub-sample x mode x GSS Next sub-sample), corrected for those who were asked but gave no
substantive answer (the documentation's don't know / no answer counts). An item below
``MIN_ASKED_RATE`` was filtered: the build refuses it unless ``curation/universe.yaml`` names the
universe and a filter on the year file that explains who answered (``check``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from culturesim.dataset_builder.review import CURATION_DIR, CurationError, load_yaml_file

UNIVERSE_FILE = CURATION_DIR / "universe.yaml"
#: Columns whose values are assigned by the design (at random or by mode), not by answers.
DESIGN_COLUMNS = ("ballot", "form", "issp", "mode")
#: An item answered by fewer than this share of those in its asked cells was filtered.
MIN_ASKED_RATE = 0.80
#: Share of the respondents who answered that a stated filter must contain.
MIN_COVERAGE = 0.95
#: A design cell counts as "asked" when more than this share of it answered.
CELL_ASKED = 0.10


class UniverseError(CurationError):
    """An item asked of a sub-population has no universe, or its stated filter does not fit."""


@dataclass(frozen=True)
class Universe:
    sentence: str  # what the prompt says, e.g. "You are married."
    clauses: tuple[tuple[str, tuple[int, ...]], ...]  # OR of (column in codes)
    reason: str

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.zeros(len(frame), dtype=bool)
        for column, codes in self.clauses:
            if column not in frame.columns:
                continue  # a filter column the year file lacks cannot select anyone there
            out |= frame[column].isin(codes).to_numpy()
        return out


def load_universes(path: Path = UNIVERSE_FILE) -> dict[str, Universe]:
    """{GSS variable: Universe} from the curated file."""
    out = {}
    for var, entry in load_yaml_file(path).items():
        sentence = str((entry or {}).get("universe") or "").strip()
        if not sentence.endswith(".") or not sentence.startswith("You "):
            raise CurationError(f"{path}: {var!r} universe {sentence!r} must be one sentence to the respondent, "
                                "starting 'You ' and ending '.'")
        clauses = []
        for clause in entry.get("filter") or ():
            if not isinstance(clause, dict) or len(clause) != 1:
                raise CurationError(f"{path}: {var!r} filter clause {clause!r} must be one {{column: [codes]}}")
            (column, codes), = clause.items()
            clauses.append((str(column), tuple(int(c) for c in codes)))
        if not clauses:
            raise CurationError(f"{path}: {var!r} has no filter; give the year-file columns that define who was asked")
        reason = str(entry.get("reason") or "").strip()
        if not reason:
            raise CurationError(f"{path}: {var!r} has no reason")
        out[str(var)] = Universe(sentence, tuple(clauses), reason)
    return out


def design_cells(frame: pd.DataFrame) -> np.ndarray:
    """One label per respondent: the random-design cell (ballot, form, ISSP, mode, GSS Next sample)."""
    parts = [frame[c].fillna(-1).astype(int).astype(str) for c in DESIGN_COLUMNS if c in frame.columns]
    if "nextgen" in frame.columns:
        parts.append(frame["nextgen"].notna().astype(int).astype(str))
    if not parts:
        return np.zeros(len(frame), dtype=object)
    label = parts[0]
    for p in parts[1:]:
        label = label + "|" + p
    return label.to_numpy()


def asked_rate(answered: np.ndarray, cells: np.ndarray, within: np.ndarray | None = None,
               nonsubstantive: float = 0.0) -> float:
    """Share of the respondents in the cells where the item was asked (optionally only those in
    ``within``) who answered, divided by the share of those asked who answer substantively."""
    series = pd.Series(answered)
    by_cell = series.groupby(cells).mean()
    asked_cells = by_cell[by_cell > CELL_ASKED].index
    pool = np.isin(cells, asked_cells)
    if within is not None:
        pool &= within
    if not pool.any():
        return 0.0
    rate = float(answered[pool].mean())
    return rate / max(1.0 - nonsubstantive, 1e-9)


def check(item: str, frame: pd.DataFrame, cells: np.ndarray, answered: np.ndarray, nonsubstantive: float,
          universe: Universe | None) -> dict[str, Any]:
    """Raise ``UniverseError`` unless the item was asked of everyone in its cells or ``universe``
    explains who answered; return the measured rates (for the build report)."""
    overall = asked_rate(answered, cells, nonsubstantive=nonsubstantive)
    if universe is None:
        if overall < MIN_ASKED_RATE:
            raise UniverseError(
                f"{item}: answered by {overall:.2f} of the respondents in the design cells where it was asked "
                f"(below {MIN_ASKED_RATE}): it was put to a sub-population. Add its universe and filter to "
                f"{UNIVERSE_FILE.name}, or exclude it in construct.yaml / review.yaml with the reason")
        return {"asked_rate": round(overall, 3)}
    mask = universe.mask(frame)
    coverage = float((answered & mask).sum() / max(answered.sum(), 1))
    inside = asked_rate(answered, cells, within=mask, nonsubstantive=nonsubstantive)
    if coverage < MIN_COVERAGE or inside < MIN_ASKED_RATE:
        raise UniverseError(
            f"{item}: the filter {universe.clauses} in {UNIVERSE_FILE.name} holds {coverage:.2f} of those who "
            f"answered (need {MIN_COVERAGE}) and {inside:.2f} of those it selects answered (need {MIN_ASKED_RATE}); "
            "fix the filter so it names who was asked")
    return {"asked_rate": round(overall, 3), "universe_coverage": round(coverage, 3),
            "asked_rate_in_universe": round(inside, 3)}
