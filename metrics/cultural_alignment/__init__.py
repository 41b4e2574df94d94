"""The ``cultural_alignment`` evaluate module; re-exports the scoring function.

``from culturesim.metrics.cultural_alignment import compute_alignment`` gives the project the same
numbers as ``evaluate.load("metrics/cultural_alignment")`` without importing ``evaluate``
(which takes seconds). ``evaluate`` itself only reads ``cultural_alignment.py``.
"""

from .cultural_alignment import (
    DEMOGRAPHIC_GROUPS,
    METRIC_VERSION,
    OUTPUT_GLOSSARY,
    SUM_TOLERANCE,
    TIE_TOLERANCE,
    VALUE_DIMENSIONS,
    ZERO_POLICIES,
    compute_alignment,
    describe,
    refusal_channel,
)

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
]
