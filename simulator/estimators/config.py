"""Which estimators exist and what a run of one records in its ``config.json``.

Why apart from ``run.py``: the sampling runner's ``build_config`` writes the ``estimator`` entry
too, and ``run.py`` builds on the runner; keeping these names here lets both import them
without an import circle.
"""

from __future__ import annotations

from typing import Any

from culturesim.simulator.estimators.logprob import (
    ESTIMATOR_VERSION,
    REMOTE_ESTIMATOR_VERSION,
    REMOTE_MAX_TOKENS,
    REMOTE_TOP_LOGPROBS,
)
from culturesim.simulator.estimators.verbalized import VERBALIZED_VERSION

__all__ = ["ESTIMATORS", "estimator_config"]

ESTIMATORS = ("sampling", "logprob", "verbalized")
"""``sampling`` is the DEF runner (``culturesim.simulator.runner``); the others are ``run.py``'s."""


def estimator_config(name: str) -> dict[str, Any]:
    """The ``estimator`` entry of a run's config.json (what decides its numbers)."""
    if name == "logprob":
        return {"name": name, "version": f"{ESTIMATOR_VERSION}/{REMOTE_ESTIMATOR_VERSION}",
                "remote_top_logprobs": REMOTE_TOP_LOGPROBS, "remote_max_tokens": REMOTE_MAX_TOKENS}
    if name == "verbalized":
        return {"name": name, "version": VERBALIZED_VERSION}
    raise ValueError(f"Unknown estimator {name!r}; choose one of {', '.join(ESTIMATORS)}")
