"""The ``cultural_alignment`` evaluate module as a package: the scoring function and its public names.

``from culturesim.metrics.cultural_alignment import compute_alignment`` gives the project the same
numbers as ``evaluate.load("metrics/cultural_alignment")`` without importing ``evaluate``
(which takes seconds). ``evaluate`` itself reads ``cultural_alignment.py`` (the adapter) and
copies the sibling files it imports; this file is not part of what it loads. The names come
from the siblings that own them; the files behind them are private.
"""

from .bootstrap import JACKKNIFE_GROUPS, PARTICIPANT_BOOTSTRAP_DEFAULT
from .channels import NON_RESPONSE_EXCLUDED, refusal_channel
from .compute import compute_alignment
from .demographics import GAP_PAIRS
from .divergences import ZERO_POLICIES
from .floors import BIAS_MC_DRAWS, FLOOR_EXACT_LIMIT, FLOOR_MC_DRAWS, FLOOR_SEED, WORTH_GRID
from .intervals import INTERVAL_PSEUDOCOUNT, MIN_PARTICIPANTS
from .survey import SMALL_CELL_COUNT
from .output import METRIC_VERSION, OUTPUT_GLOSSARY, SCORES, describe
from .paired import paired_comparison
from .participant_bias import MAX_TABLE_PARTICIPANTS
from .schema import DEMOGRAPHIC_GROUPS, DIVERGENCES, SUM_TOLERANCE, TIE_TOLERANCE, VALUE_DIMENSIONS
from .structure import STRUCTURE_VERSION, structure_fidelity
from .worth import solve_worth

__all__ = [
    "compute_alignment",
    "METRIC_VERSION",
    "SUM_TOLERANCE",
    "TIE_TOLERANCE",
    "VALUE_DIMENSIONS",
    "DEMOGRAPHIC_GROUPS",
    "ZERO_POLICIES",
    "OUTPUT_GLOSSARY",
    "describe",
    "refusal_channel",
    "NON_RESPONSE_EXCLUDED",
    "GAP_PAIRS",
    "PARTICIPANT_BOOTSTRAP_DEFAULT",
    "JACKKNIFE_GROUPS",
    "MIN_PARTICIPANTS",
    "MAX_TABLE_PARTICIPANTS",
    "paired_comparison",
    "WORTH_GRID",
    "solve_worth",
    "structure_fidelity",
    "STRUCTURE_VERSION",
    "INTERVAL_PSEUDOCOUNT",
    "SMALL_CELL_COUNT",
    "FLOOR_EXACT_LIMIT",
    "FLOOR_MC_DRAWS",
    "BIAS_MC_DRAWS",
    "FLOOR_SEED",
    "SCORES",
    "DIVERGENCES",
]
