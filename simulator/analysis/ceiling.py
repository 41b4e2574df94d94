"""The human noise ceiling: how far two random halves of the real population disagree.

A model cannot be expected to match a population more closely than the population matches
itself under sampling noise. The dataset builder computes this per GSS question from the year
file's microdata (``dataset_builder/microdata.py``: the weighted cross-section respondents
split at random into two halves ``SPLITS`` times, each pair scored with the metric module) and
stores it in the ``human_ceiling_*`` columns, so this module only reads the questions: it works
on a fresh clone without ``../shared``.

Halves hold half of a question's respondents, so the ceiling is the disagreement of two
samples of n/2, larger than the noise in the full sample: a conservative reference, stated as
such. WVS questions have no microdata and no ceiling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from culturesim.simulator.questions import Question

CEILING_VERSION = "2.0"
METHOD = ("weighted split-half of the survey's own respondents (GSS year-file microdata, wtssps weights, "
          "100 random halves per question, scored with the metric module), computed at dataset build time")


def human_ceiling(questions: Sequence[Question]) -> dict[str, Any]:
    """Per-question and mean split-half divergences of the questions that have one."""
    per_question = []
    for q in questions:
        c = q.human_ceiling
        if not c or c.get("kl") is None:
            continue
        entry = {"id": q.id, "n": q.human_n, "kl": c["kl"], "js": c["js"], "kl_sd": c.get("kl_sd"),
                 "js_sd": c.get("js_sd")}
        if q.ordinal and c.get("wasserstein") is not None:
            entry["wasserstein"] = c["wasserstein"]
            entry["wasserstein_sd"] = c.get("wasserstein_sd")
        per_question.append(entry)
    result: dict[str, Any] = {"version": CEILING_VERSION, "method": METHOD, "n_questions": len(per_question),
                              "per_question": per_question}
    if per_question:
        result["kl_mean"] = float(np.mean([p["kl"] for p in per_question]))
        result["js_mean"] = float(np.mean([p["js"] for p in per_question]))
        ordinal = [p["wasserstein"] for p in per_question if "wasserstein" in p]
        if ordinal:
            result["wasserstein_mean"] = float(np.mean(ordinal))
    return result
