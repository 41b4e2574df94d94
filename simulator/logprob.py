"""Moved to ``culturesim.simulator.estimators.logprob`` (one implementation); this name re-exports it."""

from culturesim.simulator.estimators.logprob import (  # noqa: F401
    ANSWER_PREFIX,
    ESTIMATOR_VERSION,
    LABEL_SEPARATOR,
    default_prompt_builder,
    logprob_distributions,
)

__all__ = ["ANSWER_PREFIX", "ESTIMATOR_VERSION", "LABEL_SEPARATOR", "default_prompt_builder", "logprob_distributions"]
