"""The refusal channel: an input beside the answer distributions.

A model that declines to answer does not move the divergences, so its non-answers are scored
on their own, against the human non-substantive share, never mixed in; ``refusal_channel``
scores them for questions that have no valid answer at all.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .inputs import check_settings, length
from .intervals import masked_mean, percentile_interval
from .schema import DIVERGENCES, Data, is_int, where

__all__ = [
    "NON_RESPONSE_EXCLUDED", "channel_arrays", "refusal_channel", "refusal_stats",
]

#: Statuses that are not the model's answer behaviour (a backend failure): left out of the
#: non-answer share's numerator and denominator.
NON_RESPONSE_EXCLUDED = ("error",)


def _optional_share(value: Any, what: str, i: int, ids) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{where(i, ids)}: {what}={value!r} must be a number or None")
    value = float(value)
    if math.isnan(value):
        return math.nan
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{where(i, ids)}: {what}={value!r} must be a share in [0, 1] (or None)")
    return value


def channel_arrays(statuses: Any, human_share: Any, data: Data) -> dict[str, Any]:
    """Per question: the model's non-answer share (responses without a valid answer, by status,
    over all responses except NON_RESPONSE_EXCLUDED) and the human non-substantive share, as
    arrays with NaN where not given."""
    n, ids = data.n, data.ids
    out: dict[str, Any] = {"non_answer": np.full(n, np.nan), "by_status": {}, "human_ns": np.full(n, np.nan)}
    for name, value in (("response_statuses", statuses), ("human_nonsubstantive_share", human_share)):
        if value is not None and length(value, name) != n:
            raise ValueError(f"{name} has {length(value, name)} entries but references has {n}; "
                             "give one entry per question, in the same order")
    if statuses is not None:
        rows = []
        for i, counts in enumerate(statuses):
            if counts is None:
                rows.append({})
                continue
            if not isinstance(counts, dict) or not all(isinstance(k, str) for k in counts):
                raise ValueError(f"{where(i, ids)}: response_statuses entry {counts!r} must be a dict "
                                 "status -> number of responses, e.g. {'ok': 18, 'refusal': 2}")
            for status, c in counts.items():
                if not is_int(c) or c < 0:
                    raise ValueError(f"{where(i, ids)}: response_statuses[{status!r}]={c!r} must be an int >= 0")
            rows.append({k: int(v) for k, v in counts.items() if k not in NON_RESPONSE_EXCLUDED})
        names = sorted({k for row in rows for k in row if k != "ok"})
        for name in names:
            out["by_status"][name] = np.full(n, np.nan)
        for i, row in enumerate(rows):
            total = sum(row.values())
            if total == 0:
                continue
            out["non_answer"][i] = 1.0 - row.get("ok", 0) / total
            for name in names:
                out["by_status"][name][i] = row.get(name, 0) / total
    if human_share is not None:
        out["human_ns"] = np.array([_optional_share(v, "human_nonsubstantive_share", i, ids)
                                    for i, v in enumerate(human_share)])
    return out


def refusal_channel(
    response_statuses: Any,
    human_nonsubstantive_share: Any = None,
    question_ids: Any = None,
    bootstrap_samples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> dict[str, Any] | None:
    """The refusal channel alone (the ``refusals`` block of compute_alignment), for questions
    that may have no valid answer at all and so cannot be scored for divergence: per question a
    dict status -> responses, and the human non-substantive share (or None).

    >>> r = refusal_channel([{"ok": 3, "refusal": 1}, {"refusal": 2}], [0.05, 0.1], bootstrap_samples=0)
    >>> r["model_non_answer_share_mean"], round(r["error_mean"], 3)
    (0.625, 0.55)
    """
    settings = check_settings("smoothing", 1e-3, bootstrap_samples, confidence, seed, 0)
    n = length(response_statuses, "response_statuses")
    ids = None
    if question_ids is not None:
        if length(question_ids, "question_ids") != n:
            raise ValueError(f"question_ids has {len(question_ids)} entries but response_statuses has {n}")
        ids = [str(x) for x in question_ids]
    shim = type("_Questions", (), {"n": n, "ids": ids})()
    point = channel_arrays(response_statuses, human_nonsubstantive_share, shim)
    settings["_channel_rng"] = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[2])
    return refusal_stats(point, np.ones(n, dtype=bool), settings)


def _percentile_of_means(values: np.ndarray, B: int, conf: float, rng: np.random.Generator) -> tuple:
    """Question-bootstrap percentile interval of the mean of values (1-D)."""
    if B == 0 or len(values) == 0:
        return None, None
    draws = rng.integers(0, len(values), size=(B, len(values)))
    return percentile_interval(values[draws].mean(axis=1), conf)


def refusal_stats(point: dict, mask: np.ndarray, settings: dict) -> dict[str, Any] | None:
    has = mask & np.isfinite(point["non_answer"])
    if not has.any():
        return None
    both = has & np.isfinite(point["human_ns"])
    err = point["non_answer"] - point["human_ns"]
    low, high = _percentile_of_means(err[both], settings["bootstrap_samples"], settings["confidence"],
                                     settings["_channel_rng"])
    return {
        "n_questions": int(has.sum()),
        "n_with_human_share": int(both.sum()),
        "model_non_answer_share_mean": masked_mean(point["non_answer"], has),
        "model_non_answer_share_mean_matched": masked_mean(point["non_answer"], both),
        "human_nonsubstantive_share_mean": masked_mean(point["human_ns"], both),
        "error_mean": masked_mean(err, both),
        "error_ci_low": low,
        "error_ci_high": high,
        "abs_error_mean": masked_mean(np.abs(err), both),
        "by_status": {name: masked_mean(v, has) for name, v in point["by_status"].items()},
    }
