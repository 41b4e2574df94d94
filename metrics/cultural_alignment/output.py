"""The result: one flat, JSON-serialisable dict, every key defined in OUTPUT_GLOSSARY.

The parts compute per-question arrays; here they become means over questions (all of them, and
per value dimension), with their intervals, and the optional per-question table. ``describe``
gives the glossary line of any concrete key, which the report and the Space use as labels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import stdtrit

from .bootstrap import answered_column
from .channels import refusal_stats
from .demographics import bias_profile, gap_stats
from .intervals import (
    MIN_PARTICIPANTS,
    finite_or_none,
    masked_mean,
    mean_limits,
    per_question_intervals,
    percentile_interval,
    two_sided_z,
)
from .worth import solve_worth, worth_mean
from .schema import DEMOGRAPHIC_GROUPS, DIVERGENCES, SLOTS, Data

__all__ = ["METRIC_VERSION", "OUTPUT_GLOSSARY", "describe", "assemble", "per_question"]

#: Bumped whenever a number this module returns could change for the same input.
METRIC_VERSION = "3.0.2"

#: One line per output key: what it means and which direction is better. The report and the
#: Space import it to label the numbers; ``<stat>`` stands for kl, js, wasserstein (and
#: match_rate where said). Keys of ``per_dimension`` blocks are the same as the top level's.
OUTPUT_GLOSSARY: dict[str, str] = {
    "kl_mean": "mean KL(model || human) in nats over questions, plug-in (the participants' answers as they are), lower is better",
    "js_mean": "mean Jensen-Shannon distance (base 2, in [0, 1]), plug-in, lower is better",
    "wasserstein_mean": "mean normalised 1-Wasserstein distance over ordinal questions (in [0, 1]), plug-in, lower is better",
    "match_rate": "share of questions whose model argmax is the human argmax (ties shared), higher is better",
    "<stat>_ci_low": "lower end of the question-bootstrap percentile interval of the mean (other questions like these; batteries resampled together)",
    "<stat>_ci_high": "upper end of the question-bootstrap percentile interval of the mean",
    "<stat>_bc_mean": "kl_bc_mean only: bias-corrected mean KL, an estimate of the divergence with unlimited participants (plug-in minus the participants' bias estimate (a count table to 10 participants, the jackknife above) and the survey's own bias, per question: the KL from the population); its bias is within 0.25 of its standard error in all 27 of the card's cases; lower is better. JS and Wasserstein have none: no estimator of them is unbiased at 8-20 participants",
    "<stat>_participant_ci_low": "lower end of the participant interval of the mean: for KL of the bias-corrected mean (the divergence with unlimited participants), for JS, Wasserstein and the match rate of the plug-in mean's expectation (a run of the same size on the same questions); estimate plus or minus z (KL and Wasserstein: Student t) x the participant jackknife's standard error of the mean, with the human survey's own sampling variance added (coverage and width measured in the card)",
    "<stat>_participant_ci_high": "upper end of that interval",
    "<stat>_participant_se": "standard error of that estimate: participant jackknife of the mean plus the human side's variance (Wasserstein: both scaled by its fold factor, the card's \"Mean intervals\")",
    "floor_<stat>_mean": "mean floor at the run's own P: the divergence a perfect simulator with these participants scores by sampling noise alone (0 for probability vectors); the yardstick for plug-in scores",
    "uniform_<stat>_mean": "mean uniform baseline: the divergence of as many uniformly random answers; a model above it does worse than chance",
    "normalised_<stat>": "normalised alignment score, summed over questions: 1 = a perfect simulator, 0 = random answers, higher is better (can leave [0, 1]). KL: (D_uniform - D_bc) / D_uniform with the bias-corrected KL and the uniform vector, so it does not depend on the run's size P; JS and Wasserstein: (D_uniform - D) / (D_uniform - D_floor) at the run's P, comparable only between runs of the same P. Over the questions with at least 3 answers and a baseline above the floor (n_normalised_<stat>); None where there are none",
    "normalised_<stat>_ci_low": "lower end of its question-bootstrap percentile interval",
    "normalised_<stat>_ci_high": "upper end of its question-bootstrap percentile interval",
    "normalised_<stat>_participant_ci_low": "lower end of its participant-bootstrap interval (runs of the same size, the same questions)",
    "normalised_<stat>_participant_ci_high": "upper end of its participant-bootstrap interval",
    "n_normalised_<stat>": "questions the normalised score is over: at least 3 answers and a baseline above the floor",
    "floor_exact_share": "share of questions whose JS floor was enumerated exactly (the rest: seeded Monte Carlo; KL and Wasserstein floors are always exact)",
    "refusals": "refusal channel, a separate error never mixed into the divergences: n_questions, model_non_answer_share_mean (share of responses with no valid answer, by status in by_status), human_nonsubstantive_share_mean (don't know / no answer / refused among those asked), error_mean = model - human (0 is best; above 0: the model declines more than people), its question-bootstrap error_ci_low/_high, abs_error_mean (lower is better); None without response_statuses",
    "kl_n_infinite": "questions whose exact KL is infinite (the model chose an option no human chose), before the zero-cell policy",
    "entropy_mean": "mean entropy (nats) of the model distributions; higher = more varied answers",
    "human_entropy_mean": "mean entropy (nats) of the human distributions, for comparison with entropy_mean",
    "distinct_answers_mean": "mean number of distinct answers per question (answers only); higher = more diverse participants",
    "unanimous_share": "share of questions where every participant gave the same answer (answers only); lower = more diverse",
    "participants_mean": "mean number of answers per question (answers only)",
    "n_questions": "questions scored",
    "n_ordinal": "ordinal questions (those with a Wasserstein distance)",
    "n_with_demographics": "questions with demographic distributions",
    "demographic_gaps": "per divergence and family: group_mean {group: mean divergence of the model from that group's distribution} (lower = closer) and pairs {'a_vs_b': gap = mean over questions of D(model, b) - D(model, a) (> 0: the model is closer to group a), its question-bootstrap ci_low/ci_high, a sign-flip permutation p_value (small: the lean is more than chance), n_questions, closer_to}; None without two groups of a family",
    "bias_profile_counts": "the same profile by the paper's own rule: the group with the most respondents choosing the preferred option (share x the group's n; questions where every group gives n)",
    "bias_profile_rule": "which rule bias_profile uses: 'within_group_shares' (the default; it does not favour larger groups)",
    "bias_profile": "demographic preference profile (default rule: within-group shares): per family, counts of questions whose preferred option is most typical of each group",
    "per_dimension": "the same statistics per value dimension tag",
    "settings": "the arguments used (zero policy, smoothing, bootstrap sizes, confidence, seed)",
    "metric_version": "version of this metric; numbers are comparable only within a version",
    "model_input": "'answers' (participants' option indices) or 'probabilities' (one vector per question)",
    "per_question": "with return_per_question=True: one dict per question (see the card)",
    "survey_noise_<stat>_mean": "the human survey's own noise: the expected divergence of the survey's estimate from its population, with n_eff = respondents / design effect (None where human_n_effective is not given)",
    "worth_n": "worth N respondents: the size of a random sample of real respondents that is, in expectation, as far from the population (KL) as the model is; higher is better; None when infinite (worth_n_infinite) or undefined",
    "worth_n_ci_low": "lower end of its interval (from the upper end of kl_bc_mean's participant interval)",
    "worth_n_ci_high": "upper end of its interval (None: unbounded, the interval reaches the survey's own noise)",
    "n_worth": "questions worth N is over: all of them, or where some have fewer than 3 answers the others (like the normalised scores); 0 when there is none",
    "worth_n_infinite": "True when the model's bias-corrected KL is within the survey's own noise (at or below survey_noise_kl_mean): as close as the survey itself",
    "n_few_participants": "questions with fewer than 3 answers: they get no bias-corrected value, participant interval, normalised score or worth-N; means of those over them are None, and the normalised scores leave them out",
}


def describe(key: str) -> str | None:
    """The OUTPUT_GLOSSARY line for an output key (``kl_ci_low`` -> the ``<stat>_ci_low`` line);
    None for an unknown key."""
    if key in OUTPUT_GLOSSARY:
        return OUTPUT_GLOSSARY[key]
    for stat in ("match_rate", "kl", "js", "wasserstein"):
        if stat in key:
            generic = key.replace(stat, "<stat>", 1)
            if generic in OUTPUT_GLOSSARY:
                return OUTPUT_GLOSSARY[generic]
    return None


SCORES = ("kl", "js", "wasserstein", "match_rate")
"""The headline statistics, in the order they are reported."""


def _block_stats(data: Data, point: dict, qboot, pboot, column: int, mask: np.ndarray, settings: dict) -> dict:
    conf = settings["confidence"]
    ordinal = mask & data.ordinal
    means = {
        "kl": masked_mean(point["kl"], mask),
        "js": masked_mean(point["js"], mask),
        "wasserstein": masked_mean(point["wasserstein"], ordinal),
        "match_rate": masked_mean(point["match"], mask),
    }
    out: dict[str, Any] = {}
    kl_limits = (None, None)
    quantiles: dict[str, float] = {}  # the quantile each mean interval took (intervals.mean_limits)
    for stat in SCORES:
        name = "match_rate" if stat == "match_rate" else f"{stat}_mean"
        out[name] = means[stat]
        undefined = means[stat] is None
        low, high = percentile_interval(None if qboot is None or undefined else qboot[stat][:, column], conf)
        out[f"{stat}_ci_low"], out[f"{stat}_ci_high"] = low, high
        sel = ordinal if stat == "wasserstein" else mask
        est, low, high, se = mean_limits(data, point, pboot, stat, column, sel, means[stat], conf, quantiles)
        out[f"{stat}_participant_ci_low"], out[f"{stat}_participant_ci_high"] = low, high
        out[f"{stat}_participant_se"] = se
        if stat == "kl":
            if data.answers is None:  # probability vectors: no participants, the plug-in less the survey's bias
                est = masked_mean(point["kl_bc"], mask)
                # the interval is the survey's own noise alone: none without human_n_effective
                if est is not None and data.human_n_eff is not None and np.isfinite(data.human_n_eff[mask]).any():
                    hv = math.sqrt(float(point["human_var_kl"][mask].sum())) / float(mask.sum())
                    half = two_sided_z(conf) * hv
                    low, high, se = max(est - half, 0.0), est + half, hv
                    out["kl_participant_ci_low"], out["kl_participant_ci_high"] = low, high
                    out["kl_participant_se"] = se
            out["kl_bc_mean"] = est
            kl_limits = (est, se)
    for stat in DIVERGENCES:
        sel = mask & data.ordinal if stat == "wasserstein" else mask
        out[f"floor_{stat}_mean"] = masked_mean(point[f"floor_{stat}"], sel & np.isfinite(point[f"floor_{stat}"]))
        out[f"uniform_{stat}_mean"] = masked_mean(point[f"uniform_{stat}"], sel & np.isfinite(point[f"uniform_{stat}"]))
        noise = point[f"survey_noise_{stat}"]
        out[f"survey_noise_{stat}_mean"] = masked_mean(noise, sel) if np.isfinite(noise[sel]).all() else None
        ok = sel & point[f"norm_ok_{stat}"]
        den = float(point[f"den_{stat}"][ok].sum())
        value = finite_or_none(point[f"num_{stat}"][ok].sum() / den) if ok.any() and den > 0 else None
        # a question with fewer than MIN_PARTICIPANTS answers (it would rank "better than perfect") or
        # whose baseline is not above its floor (e.g. a uniform human distribution) is left out of the
        # sums and of n_normalised_<stat>: a run of a model that parses rarely is ranked on the questions
        # it answered often enough, and says on how many
        out[f"normalised_{stat}"] = value
        low, high = percentile_interval(None if qboot is None or value is None else qboot[f"normalised_{stat}"][:, column], conf)
        out[f"normalised_{stat}_ci_low"], out[f"normalised_{stat}_ci_high"] = low, high
        # participant interval: the subset's mean divergence moves, baseline and floor do not
        low = high = None
        se = out[f"{stat}_participant_se"]
        if se is not None and value is not None:
            # the same quantile as the divergence's own interval (Student t: KL with G - 1 df, JS and
            # Wasserstein with Welch-Satterthwaite's, intervals.mean_limits)
            quantile = quantiles.get(stat, two_sided_z(conf))
            half = quantile * se * ok.sum() / den
            low, high = finite_or_none(value - half), finite_or_none(value + half)
        out[f"normalised_{stat}_participant_ci_low"], out[f"normalised_{stat}_participant_ci_high"] = low, high
        out[f"n_normalised_{stat}"] = int(ok.sum())
    out.update(_worth(data, point, pboot, mask, kl_limits, conf, column))
    out["n_few_participants"] = (
        int((mask & (data.answers.lengths < MIN_PARTICIPANTS)).sum()) if data.answers is not None else 0
    )
    out["floor_exact_share"] = masked_mean(point["floor_exact"].astype(np.float64), mask)
    out["refusals"] = refusal_stats(point, mask, settings)
    out["demographic_gaps"] = gap_stats(point, mask, settings)
    out["kl_n_infinite"] = int(point["kl_infinite"][mask].sum())
    out["entropy_mean"] = masked_mean(point["entropy"], mask)
    out["human_entropy_mean"] = masked_mean(point["human_entropy"], mask)
    if data.answers is not None:
        out["distinct_answers_mean"] = masked_mean(data.answers.distinct.astype(np.float64), mask)
        out["unanimous_share"] = masked_mean((data.answers.distinct == 1).astype(np.float64), mask)
        out["participants_mean"] = masked_mean(data.answers.lengths.astype(np.float64), mask)
    else:
        out["distinct_answers_mean"] = out["unanimous_share"] = out["participants_mean"] = None
    out["n_questions"] = int(mask.sum())
    out["n_ordinal"] = int(ordinal.sum())
    out["n_with_demographics"] = int((mask & data.has_demo).sum())
    out["bias_profile"] = bias_profile(point, mask)
    out["bias_profile_counts"] = bias_profile(point, mask, "bias_counts_")
    out["bias_profile_rule"] = "within_group_shares"
    return out


def _worth(data: Data, point: dict, pboot, mask: np.ndarray, kl_limits: tuple, conf: float, column: int) -> dict:
    """Worth-N of the mean over ``mask`` (worth.worth_mean): from kl_bc_mean with the survey's own
    bias added back (worth-N counts draws from the survey's distribution) and its standard error,
    with the KL interval's quantile. Where kl_bc_mean is None because some questions have fewer
    than MIN_PARTICIPANTS answers (a model that parses rarely), it is over the others, like the
    normalised scores, and ``n_worth`` says how many they are (0: no worth N)."""
    est, se = kl_limits
    sel = mask
    answered = answered_column(data)
    if est is None and column == 0 and answered is not None and pboot is not None:
        # the overall block only: the value dimensions have no such replicate means of their own
        sel = mask & (data.answers.lengths >= MIN_PARTICIPANTS)
        est, _, _, se = mean_limits(data, point, pboot, "kl", answered, sel, masked_mean(point["kl"], sel), conf)
    if est is not None:
        est = est + float(point["human_bias_kl"][sel].mean())
    quantile = float(stdtrit(pboot["groups"] - 1, 0.5 + conf / 2.0)) if pboot is not None else two_sided_z(conf)
    out = worth_mean(point["floor_curve_kl"], point["survey_noise_kl"], sel, data.ks.astype(np.float64), est, se,
                     quantile)
    out["n_worth"] = int(sel.sum()) if est is not None else 0
    return out


def assemble(data: Data, point: dict, qboot, pboot, settings: dict) -> dict[str, Any]:
    everything = np.ones(data.n, dtype=bool)
    overall = _block_stats(data, point, qboot, pboot, 0, everything, settings)
    result: dict[str, Any] = {"metric_version": METRIC_VERSION, "model_input": data.model_input}
    # the headline first: worth N respondents
    result.update({k: overall.pop(k) for k in ("worth_n", "worth_n_ci_low", "worth_n_ci_high", "worth_n_infinite",
                                               "n_worth")})
    result.update(overall)
    result["per_dimension"] = {
        dim: _block_stats(data, point, qboot, pboot, c + 1, data.dim_matrix[:, c], settings)
        for c, dim in enumerate(data.dims)
    }
    result["settings"] = {k: v for k, v in settings.items() if not k.startswith("_")}
    return result


def per_question(data: Data, point: dict, settings: dict) -> list[dict[str, Any]]:
    rows = []
    extra = per_question_intervals(data, point, settings)
    kl_bc, kl_low, kl_high, _ = point["limits"]["kl"]
    hb = point["human_bias_kl"]  # worth-N counts draws from the survey's distribution (see _worth)
    curve, noise = point["floor_curve_kl"], point["survey_noise_kl"]
    with np.errstate(invalid="ignore"):
        within = lambda d: np.where(np.isfinite(d) & (d <= noise), 0.0, d)  # noqa: E731
        worth = {"worth_n": solve_worth(curve, within(kl_bc + hb)),
                 "worth_n_ci_low": solve_worth(curve, within(kl_high + hb)),
                 "worth_n_ci_high": solve_worth(curve, within(kl_low + hb))}
    floor_exact = point["floor_exact"].tolist()
    ks = data.ks.tolist()
    kl, js, wass, match = (point[x].tolist() for x in ("kl", "js", "wasserstein", "match"))
    ent, hent = point["entropy"].tolist(), point["human_entropy"].tolist()
    inf = point["kl_infinite"].tolist()
    bias = {f: point[f"bias_{f}"].tolist() for f in DEMOGRAPHIC_GROUPS}
    dims = [[d for d, on in zip(data.dims, row) if on] for row in data.dim_matrix.tolist()]
    ordinal = data.ordinal.tolist()
    ans = data.answers
    for i in range(data.n):
        k = ks[i]
        model_top = np.flatnonzero(point["model_top"][i, :k]).tolist()
        human_top = np.flatnonzero(point["human_top"][i, :k]).tolist()
        row: dict[str, Any] = {
            "index": i,
            "id": data.ids[i] if data.ids is not None else None,
            "n_options": k,
            "ordinal": ordinal[i],
            "value_dimensions": dims[i],
            "kl": kl[i],
            "kl_infinite": inf[i],
            "js": js[i],
            "wasserstein": wass[i] if ordinal[i] else None,
            "match": match[i],
            "model_distribution": data.model[i, :k].tolist(),
            "human_distribution": data.human[i, :k].tolist(),
            "model_argmax": model_top[0],
            "model_top_options": model_top,
            "human_argmax": human_top[0],
            "human_top_options": human_top,
            "entropy": ent[i],
            "human_entropy": hent[i],
            "distinct_answers": int(ans.distinct[i]) if ans is not None else None,
            "unanimous": bool(ans.distinct[i] == 1) if ans is not None else None,
            "n_participants": int(ans.lengths[i]) if ans is not None else None,
        }
        for family, groups in DEMOGRAPHIC_GROUPS.items():
            code = bias[family][i]
            row[f"preferred_group_{family}"] = None if code < 0 else (groups[code] if code < len(groups) else "tie")
            code = int(point[f"bias_counts_{family}"][i])
            row[f"preferred_group_{family}_counts"] = (
                None if code < 0 else (groups[code] if code < len(groups) else "tie")
            )
        for name, values in extra.items():
            row[name] = values[i]
        row["floor_exact"] = floor_exact[i]
        row["divergence_by_group"] = (
            {stat: {f"{f}/{g}": finite_or_none(point[f"group_{stat}"][i, s]) for s, (f, g) in enumerate(SLOTS)
                    if data.demo_present[i, s]} for stat in DIVERGENCES}
            if data.has_demo[i] else None
        )
        row["non_answer_share"] = finite_or_none(point["non_answer"][i])
        row["non_answer_by_status"] = {s: finite_or_none(v[i]) for s, v in point["by_status"].items()} if row["non_answer_share"] is not None else None
        row["human_nonsubstantive_share"] = finite_or_none(point["human_ns"][i])
        row["non_answer_error"] = finite_or_none(point["non_answer"][i] - point["human_ns"][i])
        for key, values in worth.items():
            row[key] = finite_or_none(values[i])
        row["worth_n_infinite"] = bool(worth["worth_n"][i] == math.inf) if np.isfinite(kl_bc[i]) else None
        rows.append(row)
    return rows
