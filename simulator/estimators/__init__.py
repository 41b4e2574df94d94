"""The three readings of a model's opinion on the same questions, one run folder shape.

- ``sampling``: DEF participants answer and their parsed answers are counted
  (``culturesim.simulator.runner``, the default);
- ``logprob``: the probability the model puts on each option number (``logprob.py``; local
  transformers models exactly, OpenAI-compatible servers from their ``top_logprobs``);
- ``verbalized``: the model states the share of the population choosing each option
  (``verbalized.py``).

``run.py`` writes logprob and verbalized runs; ``culturesim score`` and ``culturesim report``
read all three alike.
"""

from culturesim.simulator.estimators.config import ESTIMATORS, estimator_config
from culturesim.simulator.estimators.logprob import logprob_distributions, logprob_items, remote_logprob_items
from culturesim.simulator.estimators.run import check_plan, simulate_estimator
from culturesim.simulator.estimators.verbalized import VERBALIZED_VERSION, parse_verbalized, render_verbalized

__all__ = [
    "ESTIMATORS",
    "VERBALIZED_VERSION",
    "check_plan",
    "estimator_config",
    "logprob_distributions",
    "logprob_items",
    "parse_verbalized",
    "remote_logprob_items",
    "render_verbalized",
    "simulate_estimator",
]
