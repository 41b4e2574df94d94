"""Cultural alignment: how far a model's survey answers are from a real population's.

The DEF paper (Liu et al. 2025) scores a model by running it as many simulated survey
participants, turning their answers into a preference distribution per question, and
comparing that with the distribution of real respondents: KL divergence per question,
averaged per value dimension, plus a profile of which demographic group the model's
preferred answers resemble. This folder is the one implementation of that scoring for the
whole project, packaged as a Hugging Face ``evaluate`` module so that anyone can
``evaluate.load`` it, and usable without ``evaluate`` through :func:`compute_alignment`.

This file is the ``evaluate`` adapter (the description, the citation, the ``evaluate.Metric``
class with its ``datasets.Features``); the scoring lives in its sibling files, one concern
each: ``schema`` (names, tolerances, the prepared input), ``inputs`` (validation),
``divergences`` (KL, JS, Wasserstein, zero-cell policy), ``floors`` (floors, baselines,
normalised scores), ``bootstrap`` and ``intervals`` (question and participant intervals),
``demographics`` (preference bias, group gaps), ``channels`` (refusals), ``worth`` (worth N
respondents, the survey's own noise), ``structure`` (structure fidelity),
``output`` (the result dict, OUTPUT_GLOSSARY) and ``compute`` (``compute_alignment``).

The folder is self-contained on purpose (numpy and scipy only, relative imports between the
siblings; ``evaluate`` and ``datasets`` are imported only to build the ``evaluate.Metric``
class), because ``evaluate`` copies this script and its siblings into its module cache, and
because importing ``evaluate`` costs seconds that a caller who only wants the numbers should
not pay. ``evaluate.load`` copies only the siblings named by this script's own column-0
``from .NAME import ...`` lines (it does not follow the siblings' imports), so every sibling
is imported below, and those lines carry no trailing comment (``evaluate`` would read one as a
download address).

Everything is vectorised by grouping questions by their number of options (and floors by
options and participants); the bootstraps reuse the same grouping. ``benchmarks/bench_metric.py``
times 100,000 questions x 20 participants: point estimates (floors, baselines, the jackknife's
bias-corrected KL and participant intervals, normalised scores, worth-N, demographic gaps) in
about 3.5 s of CPU; the question bootstrap and the gaps' resampling (1000 replicates each) add
about 10 s at that size (the card's "Speed").
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

# evaluate checks that the libraries this script imports are installed, and reads no other
# file: the siblings compute with scipy, so it is named here.
import scipy

from .bootstrap import JACKKNIFE_GROUPS, PARTICIPANT_BOOTSTRAP_DEFAULT
from .channels import NON_RESPONSE_EXCLUDED, refusal_channel
from .compute import compute_alignment
from .demographics import GAP_PAIRS
from .divergences import ZERO_POLICIES
from .floors import BIAS_MC_DRAWS, FLOOR_EXACT_LIMIT, FLOOR_MC_DRAWS, FLOOR_SEED, WORTH_GRID
from .inputs import PREPARE_OPTIONAL, prepare
from .intervals import INTERVAL_PSEUDOCOUNT, MIN_PARTICIPANTS
from .output import METRIC_VERSION, OUTPUT_GLOSSARY, SCORES, describe
from .paired import paired_comparison
from .participant_bias import MAX_TABLE_PARTICIPANTS
from .schema import DEMOGRAPHIC_GROUPS, DIVERGENCES, SUM_TOLERANCE, TIE_TOLERANCE, VALUE_DIMENSIONS, is_int
from .structure import STRUCTURE_VERSION, structure_fidelity
from .survey import SMALL_CELL_COUNT
from .worth import solve_worth

# The module's public names as evaluate users see them: the package's, plus the evaluate.Metric class.
__all__ = [
    "compute_alignment",
    "CulturalAlignment",
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


# --------------------------------------------------------------------------------------
# The evaluate module
# --------------------------------------------------------------------------------------

_CITATION = """\
@article{liu2025def,
  title   = {Towards realistic evaluation of cultural value alignment in large language models:
             Diversity enhancement for survey response simulation},
  author  = {Liu, Haijiang and Cao, Yong and Wu, Xun and Qiu, Chen and Gu, Jinguang and
             Liu, Maofu and Hershcovich, Daniel},
  journal = {Information Processing \\& Management},
  volume  = {62},
  number  = {4},
  pages   = {104099},
  year    = {2025},
  doi     = {10.1016/j.ipm.2025.104099}
}
@article{kullback1951information,
  title   = {On Information and Sufficiency},
  author  = {Kullback, Solomon and Leibler, Richard A.},
  journal = {The Annals of Mathematical Statistics},
  volume  = {22}, number = {1}, pages = {79--86}, year = {1951}
}
@article{lin1991divergence,
  title   = {Divergence measures based on the {S}hannon entropy},
  author  = {Lin, Jianhua},
  journal = {IEEE Transactions on Information Theory},
  volume  = {37}, number = {1}, pages = {145--151}, year = {1991}
}
@article{endres2003metric,
  title   = {A new metric for probability distributions},
  author  = {Endres, Dominik M. and Schindelin, Johannes E.},
  journal = {IEEE Transactions on Information Theory},
  volume  = {49}, number = {7}, pages = {1858--1860}, year = {2003}
}
@book{villani2009optimal,
  title     = {Optimal Transport: Old and New},
  author    = {Villani, C{\\'e}dric},
  publisher = {Springer}, year = {2009}
}
@inproceedings{santurkar2023whose,
  title     = {Whose Opinions Do Language Models Reflect?},
  author    = {Santurkar, Shibani and Durmus, Esin and Ladhak, Faisal and Lee, Cinoo and
               Liang, Percy and Hashimoto, Tatsunori},
  booktitle = {Proceedings of the 40th International Conference on Machine Learning},
  year      = {2023}
}
@article{efron1979bootstrap,
  title   = {Bootstrap Methods: Another Look at the Jackknife},
  author  = {Efron, Bradley},
  journal = {The Annals of Statistics},
  volume  = {7}, number = {1}, pages = {1--26}, year = {1979}
}
"""

_DESCRIPTION = """\
Cultural alignment scores how close a language model's answers to survey questions are to the
answers of a real population, the way the DEF paper (Liu et al. 2025) does it: the model is run
as many simulated participants, their answers form a preference distribution per question, and
that distribution is compared with the human one. Per question it computes KL(model || human) in
nats (with a documented zero-cell policy, never a silent infinity), the Jensen-Shannon distance
(base 2, in [0, 1]) and, for ordinal questions, the 1-Wasserstein distance between the option
positions divided by (options - 1), so also in [0, 1]. It averages them over questions and per
value dimension with percentile bootstrap confidence intervals (over questions, and over
participants when answers are given), reports the argmax match rate, the demographic preference
profile (which sex and age group the model's preferred options are most typical of) and the
diversity of the simulated participants' answers. Per question it also gives the sampling-noise
floor (the expected divergence of as many answers drawn from the human distribution) and the
uniform baseline, and from them the normalised alignment score (1 = a perfect simulator of this
size, 0 = random answers); bias-corrected participant intervals for the divergence with
unlimited participants; the refusal channel; and demographic gaps with permutation p-values.

Two configurations: "default" takes the participants' answers (option indices) as predictions;
"probabilities" takes one probability vector per question as predictions.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of one entry per question):
        default configuration: the simulated participants' answers, `list[int]` per question,
        each a 0-based index into the options (and into the human distribution); for a multiple
        choice answer a `list[int]` of distinct indices, each chosen option counting 1/len. If
        any question has a multiple choice answer, pass every answer of that batch as a list
        (a plain int is wrapped for you). Participant j is the j-th answer of every question.
        "probabilities" configuration: `list[float]` per question, a probability vector over
        the options (sums to 1 within 1e-6).
    references (`list[list[float]]`): the human distribution per question (share of respondents
        per option, sums to 1 within 1e-6; it is renormalised exactly before scoring).
    ordinal (`list[bool]`, optional): whether each question's options are ordered; Wasserstein
        is computed for these only. Default: none ordinal.
    value_dimensions (`list[list[str]]`, optional): tags per question among
        EVI IDV IVR LTO MAS PDI UAI TDI USI; results are also given per tag.
    demographics (`list[list[dict]]`, optional): per question a (possibly empty) list of
        {"group_type": "sex" | "age", "group": "female" | "male" | "18-29" | "30-49" | "50+",
        "distribution": list[float], optional "n", "year"}.
    question_ids (`list[str]`, optional): named in error messages and in the per-question table.
    num_options (`list[int]`, optional): options per question; checked against the references.
    zero_policy (`str`, default "smoothing"): how KL treats a model share > 0 where the human
        share is 0. "smoothing": add `smoothing` to every cell of both distributions and
        renormalise (always finite). "paper": exact KL, each infinity replaced by the largest
        finite KL of the same call + 1, as the paper's code did. "raise": exact KL, ValueError
        if any is infinite.
    smoothing (`float`, default 1e-3): the additive constant of the "smoothing" policy.
    bootstrap_samples (`int`, default 1000): percentile bootstrap replicates; 0 = no intervals.
    participant_bootstrap_samples (`int`, optional): replicates of the participant bootstrap
        alone (default: min(bootstrap_samples, 100); 0 switches it off).
    confidence (`float`, default 0.95): two-sided level of the intervals.
    seed (`int`, default 0): seeds both bootstraps; same inputs and seed, same intervals.
    return_per_question (`bool`, default False): add a "per_question" list of dicts.
    response_statuses (`list[dict[str, int]]`, optional): per question, responses by status
        ({"ok": 18, "refusal": 2}); gives the refusal channel ("error" rows are left out).
    human_nonsubstantive_share (`list[float | None]`, optional): per question, the human share of
        don't know / refused / skipped answers.
    battery (`list[str | None]`, optional): per question, the block of questions it was asked in;
        the question bootstrap draws a battery's questions together.
    human_n_effective (`list[float | None]`, optional): per question, respondents behind the human
        distribution divided by the design effect; puts the survey's own noise into the intervals.

Returns:
    A flat dict of plain Python numbers (None where undefined) and small dicts:
    kl_mean (float >= 0, nats, lower is better); js_mean (float in [0, 1], lower is better);
    wasserstein_mean (float in [0, 1] over ordinal questions, lower is better, None if none);
    match_rate (float in [0, 1], higher is better: share of questions whose model argmax is the
    human argmax, ties shared); each with <stat>_ci_low / <stat>_ci_high (question bootstrap)
    and <stat>_participant_ci_low / _high (participant bootstrap, answers only);
    kl_n_infinite (int, questions whose exact KL is infinite); entropy_mean and
    human_entropy_mean (nats, >= 0); distinct_answers_mean (>= 1), unanimous_share (in [0, 1])
    and participants_mean (answers only); n_questions, n_ordinal, n_with_demographics;
    bias_profile {"n": {family: int}, "all" | "matched" | "mismatched": {family: {group: count,
    "tie": count}}}; per_dimension {tag: the same statistics for the questions with that tag};
    settings (the arguments used); metric_version; model_input; per_question when asked.
    Also: <stat>_bc_mean (bias-corrected, for unlimited participants) with the bias-corrected
    <stat>_participant_ci_low / _high and <stat>_participant_se; floor_<stat>_mean (what a
    perfect simulator of this size scores) and uniform_<stat>_mean (random answers);
    normalised_<stat> ((D_uniform - D_model) / (D_uniform - D_floor): 1 perfect, 0 random,
    higher is better) with question and participant intervals; refusals (non-answer share vs
    the human non-substantive share); survey_noise_<stat>_mean (the human survey's own noise, with
    human_n_effective); worth_n (worth N respondents, first key); demographic_gaps (gap between groups
    with CI and permutation p-value); bias_profile_counts (the paper's counts rule). One line
    per key: OUTPUT_GLOSSARY.

Examples:

    Four simulated participants answer two questions (the second one is ordinal):

    >>> import evaluate
    >>> metric = evaluate.load("metrics/cultural_alignment")
    >>> results = metric.compute(
    ...     predictions=[[0, 0, 0, 1], [2, 2, 1, 2]],
    ...     references=[[0.6, 0.4], [0.1, 0.2, 0.7]],
    ...     ordinal=[False, True],
    ...     zero_policy="paper",
    ...     bootstrap_samples=0,
    ... )
    >>> round(results["kl_mean"], 4), round(results["js_mean"], 4)
    (0.0787, 0.1829)
    >>> round(results["wasserstein_mean"], 4), results["match_rate"], results["distinct_answers_mean"]
    (0.075, 1.0, 2.0)

    Multiple choice answers and the demographic profile: the model prefers option 1, which
    women choose more often than men.

    >>> results = metric.compute(
    ...     predictions=[[[0, 1], [1], [1, 2], [1]]],
    ...     references=[[0.2, 0.5, 0.3]],
    ...     demographics=[[
    ...         {"group_type": "sex", "group": "female", "distribution": [0.2, 0.6, 0.2]},
    ...         {"group_type": "sex", "group": "male", "distribution": [0.3, 0.4, 0.3]},
    ...     ]],
    ...     bootstrap_samples=0,
    ... )
    >>> results["bias_profile"]["all"]["sex"]
    {'female': 1.0, 'male': 0.0, 'tie': 0.0}

    Probability vectors instead of answers:

    >>> probs = evaluate.load("metrics/cultural_alignment", "probabilities")
    >>> results = probs.compute(predictions=[[0.75, 0.25]], references=[[0.6, 0.4]],
    ...                         zero_policy="paper", bootstrap_samples=0)
    >>> round(results["kl_mean"], 4)
    0.0499
"""

# doctest (and pytest --doctest-modules) also runs the examples above.
__test__ = {"evaluate_examples": _KWARGS_DESCRIPTION}


def _has_multiple_choice(predictions: Any) -> bool:
    for answers in predictions:
        if isinstance(answers, (str, bytes)) or not hasattr(answers, "__iter__"):
            return False
        for a in answers:
            if not is_int(a) and hasattr(a, "__len__") and not isinstance(a, (str, bytes)):
                return True
    return False


def _prepare_evaluate_predictions(predictions: Any, as_lists: bool | None = None) -> Any:
    """Before evaluate stores a batch in Arrow: refuse float answers (Arrow would silently
    truncate 0.5 to 0) and wrap plain ints as one-option lists when the batch has multiple
    choice answers, or when earlier batches were stored as lists (``as_lists``; None before
    the first batch). A multiple choice batch after single-choice batches cannot be stored."""
    if predictions is None:
        return None
    if isinstance(predictions, np.ndarray):
        predictions = predictions.tolist()
    predictions = [a.tolist() if isinstance(a, np.ndarray) else a for a in predictions]
    for i, answers in enumerate(predictions):
        if isinstance(answers, (str, bytes)) or not hasattr(answers, "__iter__"):
            continue  # compute_alignment names the question
        for j, a in enumerate(answers):
            values = a if isinstance(a, (list, tuple)) else [a]
            for v in values:
                if isinstance(v, (float, np.floating)):
                    raise ValueError(
                        f"question {i}: participant {j} answered {a!r}, a float; answers are int option "
                        'indices. For probability vectors load the "probabilities" configuration: '
                        'evaluate.load("cultural_alignment", "probabilities")'
                    )
    multiple = _has_multiple_choice(predictions)
    if multiple and as_lists is False:
        raise ValueError(
            "this batch has multiple choice answers (lists) but the earlier batches had plain int answers and "
            "were stored that way; give every answer as a list (e.g. [2]) from the first batch on, or add the "
            "batches with multiple choice questions first"
        )
    if multiple or as_lists:
        predictions = [
            [a if isinstance(a, (list, tuple)) else [a] for a in answers]
            if isinstance(answers, (list, tuple))
            else answers
            for answers in predictions
        ]
    return predictions


_INT64 = (-(1 << 63), 1 << 63)


def _arrow_safe(predictions: Any, references: Any, probabilities: bool) -> bool:
    """Whether evaluate's Arrow storage keeps this batch as given: numbers stay numbers (no
    bools, strings or ints beyond int64; answers are ints, or lists of ints)."""

    def number(x: Any) -> bool:
        return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))

    def answer(x: Any) -> bool:
        return is_int(x) and _INT64[0] <= int(x) < _INT64[1]

    def rows(values: Any, ok) -> bool:
        if isinstance(values, np.ndarray):
            values = values.tolist()
        if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
            return False
        for row in values:
            if isinstance(row, np.ndarray):
                row = row.tolist()
            if isinstance(row, (str, bytes, dict)) or not hasattr(row, "__iter__") or not all(map(ok, row)):
                return False
        return True

    def one_answer(x: Any) -> bool:
        if isinstance(x, (list, tuple)):
            return all(map(answer, x))
        return answer(x)

    if hasattr(references, "__len__") and len(references) == 0:
        return False  # evaluate itself fails on an empty batch with an IndexError
    return rows(references, number) and rows(predictions, number if probabilities else one_answer)


def _build_metric_class() -> type:
    import datasets
    import evaluate

    list_of = getattr(datasets, "List", None) or datasets.Sequence  # datasets < 4 has no List
    references = list_of(datasets.Value("float64"))

    @evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
    class CulturalAlignment(evaluate.Metric):
        def _info(self) -> evaluate.MetricInfo:
            if self.config_name == "probabilities":
                features: Any = datasets.Features(
                    {"predictions": list_of(datasets.Value("float64")), "references": references}
                )
            elif self.config_name in ("default", "answers"):
                features = [
                    datasets.Features({"predictions": list_of(datasets.Value("int64")), "references": references}),
                    datasets.Features(
                        {"predictions": list_of(list_of(datasets.Value("int64"))), "references": references}
                    ),
                ]
            else:
                raise ValueError(
                    f"unknown configuration {self.config_name!r}; choose 'default' (answers as option "
                    "indices) or 'probabilities' (a probability vector per question)"
                )
            return evaluate.MetricInfo(
                description=_DESCRIPTION,
                citation=_CITATION,
                inputs_description=_KWARGS_DESCRIPTION,
                features=features,
                license="Apache-2.0",
                reference_urls=[
                    "https://doi.org/10.1016/j.ipm.2025.104099",
                    "https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.entropy.html",
                    "https://docs.scipy.org/doc/scipy/reference/generated/scipy.spatial.distance.jensenshannon.html",
                    "https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.wasserstein_distance.html",
                ],
            )

        def _stored_as_lists(self) -> bool | None:
            """Whether earlier batches were stored as lists of answer lists; None before the first."""
            if self.writer is None or self.selected_feature_format is None:
                return None
            return not isinstance(self.selected_feature_format["predictions"].feature, datasets.Value)

        def _validate(self, predictions, references) -> None:
            """The checks of compute_alignment, before evaluate stores the batch in Arrow (which
            would turn True into 1, answer strings into a format dump and huge ints into an
            OverflowError): the same ValueErrors, naming the question of this batch."""
            if predictions is None or references is None:
                return
            side = "probabilities" if self.config_name == "probabilities" else "predictions"
            try:
                prepare(**{side: predictions}, references=references, **dict.fromkeys(PREPARE_OPTIONAL))
            except ValueError:
                # what Arrow stores faithfully is left to compute(), whose message can name the
                # question's id; what it would mangle is refused now
                if not _arrow_safe(predictions, references, self.config_name == "probabilities"):
                    raise

        def add_batch(self, *, predictions=None, references=None, **kwargs):
            """Add a batch of questions (see the inputs below); per-question options such as
            ordinal go to compute(), covering all questions added, in order."""
            if self.config_name != "probabilities":
                predictions = _prepare_evaluate_predictions(predictions, self._stored_as_lists())
            self._validate(predictions, references)
            return super().add_batch(predictions=predictions, references=references, **kwargs)

        def add(self, *, prediction=None, reference=None, **kwargs):
            """Add one question (see the inputs below)."""
            if self.config_name != "probabilities" and prediction is not None:
                prediction = _prepare_evaluate_predictions([prediction], self._stored_as_lists())[0]
            if prediction is not None and reference is not None:
                self._validate([prediction], [reference])
            return super().add(prediction=prediction, reference=reference, **kwargs)

        def _compute(
            self,
            predictions,
            references,
            ordinal=None,
            value_dimensions=None,
            demographics=None,
            question_ids=None,
            num_options=None,
            zero_policy="smoothing",
            smoothing=1e-3,
            bootstrap_samples=1000,
            participant_bootstrap_samples=None,
            confidence=0.95,
            seed=0,
            return_per_question=False,
            response_statuses=None,
            human_nonsubstantive_share=None,
            battery=None,
            human_n_effective=None,
        ):
            model_side = {"probabilities" if self.config_name == "probabilities" else "predictions": predictions}
            return compute_alignment(
                references=references,
                ordinal=ordinal,
                value_dimensions=value_dimensions,
                demographics=demographics,
                question_ids=question_ids,
                num_options=num_options,
                zero_policy=zero_policy,
                smoothing=smoothing,
                bootstrap_samples=bootstrap_samples,
                participant_bootstrap_samples=participant_bootstrap_samples,
                confidence=confidence,
                seed=seed,
                return_per_question=return_per_question,
                response_statuses=response_statuses,
                human_nonsubstantive_share=human_nonsubstantive_share,
                battery=battery,
                human_n_effective=human_n_effective,
                **model_side,
            )

    CulturalAlignment.__module__ = __name__
    CulturalAlignment.__qualname__ = "CulturalAlignment"
    return CulturalAlignment


def __getattr__(name: str) -> Any:
    # The evaluate.Metric class is built on first use so that importing compute_alignment
    # does not import evaluate (seconds); evaluate.load imports this file with evaluate
    # already loaded, and the class is then defined at import time below.
    if name == "CulturalAlignment":
        cls = _build_metric_class()
        globals()["CulturalAlignment"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if "evaluate" in sys.modules:
    CulturalAlignment = _build_metric_class()
