"""culturesim inside the evaluation harnesses people already use.

- lm-evaluation-harness: the task folder ``lm_eval_tasks/`` (``culturesim_us``, ``_cn``,
  ``_jp``, ``_eg``), found with ``culturesim harness-path`` and used as
  ``lm_eval --include_path "$(culturesim harness-path)" --tasks culturesim_us ...``. It is the
  log-prob estimator: lm-eval's ``multiple_choice`` log-likelihoods of the option numbers.
- inspect_ai: ``culturesim.simulator.harness.inspect_task`` (``inspect eval culturesim/us``), DEF
  participants as epochs, answers read by our parser.

Both score through ``culturesim.metrics.cultural_alignment.compute_alignment``; nothing here recomputes a
divergence. Neither harness is a dependency of culturesim: ``pip install "culturesim[harness]"``.
"""

from culturesim.simulator.harness.common import (
    HARNESS_INSTALL,
    LM_EVAL_TASK_DIR,
    def_logprob_prompt,
    option_labels,
)

__all__ = ["HARNESS_INSTALL", "LM_EVAL_TASK_DIR", "def_logprob_prompt", "option_labels"]
