"""``compute_alignment``: the scoring function, in the order its parts run.

Validate and prepare the inputs, compute the per-question point estimates, the demographic
outcomes, the refusal channel, the floors and baselines, the survey's own noise, then the
resamplings (question bootstrap, participant jackknife), and
assemble the result. Importing it costs numpy and scipy only, never ``evaluate``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .bootstrap import one_blas_thread, participant_jackknife, question_bootstrap
from .channels import channel_arrays
from .demographics import bias_outcomes, group_divergences
from .divergences import point_estimates
from .floors import kl_floor_curve, normalised_parts, question_floors
from .inputs import add_design, check_settings, prepare
from .intervals import MIN_PARTICIPANTS, human_variance, jackknife_moments, participant_limits, single_choice, two_sided_z
from .participant_bias import table_bias_kl
from .output import assemble, per_question
from .schema import DIVERGENCES
from .survey import human_bias
from .worth import survey_noise

__all__ = ["compute_alignment"]


def compute_alignment(
    predictions: Any = None,
    probabilities: Any = None,
    references: Any = None,
    ordinal: Any = None,
    value_dimensions: Any = None,
    demographics: Any = None,
    question_ids: Any = None,
    num_options: Any = None,
    zero_policy: str = "smoothing",
    smoothing: float = 1e-3,
    bootstrap_samples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
    return_per_question: bool = False,
    participant_bootstrap_samples: int | None = None,
    response_statuses: Any = None,
    human_nonsubstantive_share: Any = None,
    battery: Any = None,
    human_n_effective: Any = None,
) -> dict[str, Any]:
    """Score a model's answer distributions against human ones (see the module README).

    Give the model side either as ``predictions`` (per question, the simulated
    participants' answers as 0-based option indices; a list of indices for a multiple
    choice answer, each chosen option counting ``1/len``) or as ``probabilities`` (per
    question, a probability vector over the options). ``references`` are the human
    distributions. Participant ``j`` is the ``j``-th answer of every question; the
    participant bootstrap resamples these columns.

    ``participant_bootstrap_samples`` (default: ``min(bootstrap_samples, 100)``) sets the replicates
    of the participant bootstrap alone; 0 switches it off (it costs about
    ``B x questions x options`` float operations, a few seconds for 100,000 questions).

    ``response_statuses`` (per question a dict status -> number of responses, e.g. ``{"ok": 18,
    "refusal": 2}``) and ``human_nonsubstantive_share`` (per question a float or None) give the
    refusal channel. ``battery`` (per question a string or None) names the block a question was
    asked in: the question bootstrap draws a battery's questions together. ``human_n_effective``
    (per question a number >= 1 or None: respondents / design effect) puts the human survey's own
    sampling noise into every interval and gives ``survey_noise_<stat>_mean`` and worth-N's
    infinity; without it the reference is treated as exact.

    Returns a flat JSON-serialisable dict; every key is documented in the README
    ("Output Values"). Undefined values are ``None``, never NaN or infinity.

    >>> r = compute_alignment(predictions=[[0, 0, 0, 1], [2, 2, 1, 2]],
    ...                       references=[[0.6, 0.4], [0.1, 0.2, 0.7]],
    ...                       ordinal=[False, True], zero_policy="paper", bootstrap_samples=0)
    >>> round(r["kl_mean"], 6), round(r["wasserstein_mean"], 6), r["match_rate"]
    (0.078694, 0.075, 1.0)
    >>> r["distinct_answers_mean"], r["unanimous_share"]
    (2.0, 0.0)
    """
    settings = check_settings(
        zero_policy, smoothing, bootstrap_samples, confidence, seed, participant_bootstrap_samples
    )
    data = prepare(
        predictions, probabilities, references, ordinal, value_dimensions, demographics, question_ids, num_options
    )
    add_design(data, battery, human_n_effective)
    settings["_per_question"] = bool(return_per_question)
    # every matrix product below is small: one BLAS thread (a multi-threaded BLAS busy-waits on a
    # shared machine, CPU time that buys nothing)
    with one_blas_thread():
        point = point_estimates(data, settings)
        point.update(bias_outcomes(data, point["model_top"]))
        point.update(channel_arrays(response_statuses, human_nonsubstantive_share, data))
        point.update(question_floors(data, settings))
        point["floor_curve_kl"] = kl_floor_curve(data, settings)
        point.update(survey_noise(data, point["floor_curve_kl"]))
        seeds = np.random.SeedSequence(seed).spawn(4)
        settings["_channel_rng"] = np.random.default_rng(seeds[2])
        settings["_gap_rng"] = np.random.default_rng(seeds[3])
        point.update(group_divergences(data, settings))
        pboot = None
        if data.answers is not None and settings["participant_bootstrap_samples"] > 0:
            pboot = participant_jackknife(data, point, settings)
        for stat in DIVERGENCES:
            point[f"human_var_{stat}"] = human_variance(data, data.model, stat, settings, js=point["js"])
        # the plug-in KL's bias has two parts: the participants' (the jackknife's estimate) and the
        # survey's (human_bias: the reference is an estimate too); kl_bc subtracts both
        point["human_bias_kl"], var_fix = human_bias(data, data.model, settings)
        point["human_var_kl"] = np.maximum(point["human_var_kl"] + var_fix, 0.0)
        if data.answers is None:
            point["bias_kl"] = point["human_bias_kl"].copy()
        else:
            # the participants' part: the count table's where each participant gave one answer
            # (participant_bias: the jackknife left a third of it at 8 participants), else the jackknife's
            jack = jackknife_moments(data, pboot, "kl")[0]
            if settings["zero_policy"] == "smoothing":
                table = table_bias_kl(data, settings["smoothing"], single_choice(data))
                jack = np.where(np.isfinite(table) & np.isfinite(jack), table, jack)
            point["bias_kl"] = jack + point["human_bias_kl"]
            point["bias_kl"][data.answers.lengths < MIN_PARTICIPANTS] = np.nan
        point["kl_bc"] = point["kl"] - point["bias_kl"]
        point["limits"] = participant_limits(data, point, pboot if return_per_question else None, settings)
        if data.answers is None:  # no participants: the value is the plug-in, uncertain by the human side only
            point["limits"]["kl"] = _human_only_limits(point, settings)
        point.update(normalised_parts(data, point, settings, MIN_PARTICIPANTS))
        qboot = question_bootstrap(data, point, settings, np.random.default_rng(seeds[0]))
    result = assemble(data, point, qboot, pboot, settings)
    if return_per_question:
        result["per_question"] = per_question(data, point, settings)
    return result


def _human_only_limits(point: dict, settings: dict) -> tuple:
    """Per question (bc, low, high, se) of KL for probability vectors: the plug-in less the
    survey's bias (survey.human_bias) plus or minus z x the human side's standard error."""
    se = np.sqrt(point["human_var_kl"])
    half = two_sided_z(settings["confidence"]) * se
    kl = point["kl_bc"]
    return kl, np.maximum(kl - half, 0.0), kl + half, se
