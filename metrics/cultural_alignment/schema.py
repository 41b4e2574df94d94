"""What every part of the metric agrees on: the names, the tolerances and the prepared input.

The tags, groups and statistics are named once here, and every sibling reads the validated
questions through the one ``Data`` record that ``inputs.prepare`` builds (with ``Answers``, the
participants' answers as flat entries), so no part re-validates or re-pads what another checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "SUM_TOLERANCE", "TIE_TOLERANCE", "VALUE_DIMENSIONS", "DEMOGRAPHIC_GROUPS", "SLOTS", "SLOT_INDEX",
    "FAMILY_SLOTS", "DIVERGENCES", "LN2", "Answers", "Data", "where", "is_int",
]

#: A distribution (human, model probabilities, demographic) must sum to 1 within this.
SUM_TOLERANCE = 1e-6

#: Two shares closer than this are tied (argmax ties, demographic ties).
TIE_TOLERANCE = 1e-9
VALUE_DIMENSIONS = ("EVI", "IDV", "IVR", "LTO", "MAS", "PDI", "UAI", "TDI", "USI")
DEMOGRAPHIC_GROUPS: dict[str, tuple[str, ...]] = {
    "sex": ("female", "male"),
    "age": ("18-29", "30-49", "50+"),
}
SLOTS = [(family, group) for family, groups in DEMOGRAPHIC_GROUPS.items() for group in groups]
SLOT_INDEX = {pair: s for s, pair in enumerate(SLOTS)}
FAMILY_SLOTS = {
    family: np.array([SLOT_INDEX[(family, g)] for g in groups]) for family, groups in DEMOGRAPHIC_GROUPS.items()
}
DIVERGENCES = ("kl", "js", "wasserstein")
LN2 = math.log(2.0)


@dataclass
class Answers:
    """The participants' answers as flat entries, one per (question, participant, option)."""

    question: np.ndarray  # int64, nondecreasing
    participant: np.ndarray  # int64, position of the answer in its question's list
    option: np.ndarray  # int64
    weight: np.ndarray | None  # float64 (1/len for multiple choice); None means all 1
    lengths: np.ndarray  # int64 (n,) answers per question
    distinct: np.ndarray  # int64 (n,) distinct responses per question


@dataclass
class Data:
    n: int
    ks: np.ndarray  # int64 (n,) options per question
    human: np.ndarray  # float64 (n, kmax) zero padded, rows sum to 1
    model: np.ndarray  # float64 (n, kmax) zero padded, rows sum to 1
    ordinal: np.ndarray  # bool (n,)
    dims: list[str]  # value dimensions present, in VALUE_DIMENSIONS order
    dim_matrix: np.ndarray  # bool (n, len(dims))
    demo: np.ndarray | None  # float64 (n, len(SLOTS), kmax), zero where a group is absent
    demo_present: np.ndarray | None  # bool (n, len(SLOTS))
    has_demo: np.ndarray  # bool (n,) non-empty demographics
    demo_n: np.ndarray | None  # float64 (n, len(SLOTS)) respondents per group, NaN where not given
    ids: list[str] | None
    model_input: str
    answers: Answers | None = None
    groups: dict[int, np.ndarray] = field(default_factory=dict)  # k -> question indices
    cluster: np.ndarray | None = None  # int64 (n,) battery of each question, 0..clusters-1 (own cluster without one)
    human_n_eff: np.ndarray | None = None  # float64 (n,) effective respondents behind the human side, NaN if unknown


def where(i: int, ids: list[str] | None) -> str:
    return f"question {i} (id {ids[i]!r})" if ids is not None else f"question {i}"


def is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))
