"""lm-evaluation-harness functions for the culturesim tasks (``culturesim_us``, ``_cn``, ``_jp``, ``_eg``).

Run (``--apply_chat_template`` puts the DEF prompt in the model's chat format, as culturesim's own
log-prob estimator does)::

    lm_eval --model hf --model_args pretrained=MODEL --include_path "$(culturesim harness-path)" \
        --tasks culturesim_us --apply_chat_template --limit 5

What a task does. Each dataset row (one question of one culture) is one lm-eval document. The
context is the DEF prompt (``culturesim.simulator.prompts.render_question``: the culture as [COUNTRY],
options numbered in source order) and the reply is prefilled with the template language's
answer label (``gen_prefix``: ``Answer:``, ``答案：``, ``回答：``); lm-eval's ``multiple_choice``
then scores the continuation `` k`` for every option number ``k``. ``process_results`` turns
the log-likelihoods into one probability distribution over the question's options, and the
aggregations hand all of a task's distributions to ``compute_alignment`` (the
``cultural_alignment`` metric; nothing is recomputed here), giving KL (as in the DEF paper,
with the metric's default smoothing), Jensen-Shannon, normalised Wasserstein, the argmax match
rate, their question-bootstrap 95% intervals and per-value-dimension KL and JS.

Numbers that are prefixes of other numbers. With 10 or more options, `` 1`` is the start of
`` 10``..`` 19`` as well: its log-likelihood counts every reply beginning with 1. As in
``culturesim.simulator.estimators.logprob``, option ``k`` must be the number *ending* there, so for each such label
the task also asks for `` k0``..`` k9`` and uses ``P(k) - sum_d P(kd)`` (the probability that
no digit follows). This is exact for tokenizers that write numbers digit by digit (SmolLM2,
Llama 2, Mistral, Qwen); with one that has multi-digit number tokens it is an approximation,
floored at a tiny positive value. The extra continuations never enter the distribution.

Dataset. By default the dataset folder that ships with culturesim; ``--metadata
'{"dataset": "ORG/NAME"}'`` (a Hub id or another local folder; optional ``"revision"``) reads
another copy. Multiple-choice questions (several answers allowed) are left out: one
distribution over single options does not describe them. Each task's ``metadata.version``
changes whenever a number it prints would.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any

import datasets

from culturesim.metrics.cultural_alignment import VALUE_DIMENSIONS, compute_alignment
from culturesim.simulator.harness.common import answer_prefix, load_records, option_labels
from culturesim.simulator.prompts import render_question
from culturesim.simulator.questions import DEFAULT_DATASET_DIR, Question

DIGITS = "0123456789"
PREFIX_COLUMN = "culturesim_answer_prefix"
"""Added to every document: the reply's prefill (the YAML's ``gen_prefix`` names this column)."""
BOOTSTRAP_SAMPLES = 1000
"""Question-bootstrap replicates behind the ``*_ci_low``/``*_ci_high`` figures (seed 0)."""


# ------------------------------------------------------------------------------ documents


def load_docs(culture: str, dataset: str | None = None, revision: str | None = None, **_: Any) -> datasets.DatasetDict:
    """The task's documents: the native-language rows of the ``culture`` config, split ``test``.

    lm-eval calls this with the task's ``dataset_kwargs`` (``culture``) and its metadata (the
    optional ``dataset``/``revision`` from ``--metadata``, plus lm-eval's own keys, ignored).
    """
    kept = load_records(culture, dataset, revision).filter(lambda row: row["question_type"] != "multiple_choice")
    kept = kept.map(lambda row: {PREFIX_COLUMN: answer_prefix(Question.from_record(row))})
    if len(kept) == 0:
        raise ValueError(
            f"The {culture!r} config of {dataset or DEFAULT_DATASET_DIR} has no single-choice or scale questions to score."
        )
    return datasets.DatasetDict({"test": kept})


def _question(doc: dict[str, Any]) -> Question:
    return Question.from_record(doc)


def doc_to_text(doc: dict[str, Any]) -> str:
    """The DEF prompt for this question (English template: ``I want you to act as a citizen
    from the United States. You should obtain an answer from 4 choices. ... Request: ...``)."""
    question = _question(doc)
    return render_question(question, question.culture).text


def _extended_labels(labels: list[str]) -> list[str]:
    """``labels`` followed by ``k0``..``k9`` (those not options already) for every label ``k``
    that starts a longer label."""
    prefixes = [label for label in labels if any(o != label and o.startswith(label) for o in labels)]
    return labels + [p + d for p in prefixes for d in DIGITS if p + d not in labels]


def doc_to_choice(doc: dict[str, Any]) -> list[str]:
    """The option numbers (what follows the answer label), then the digit continuations."""
    return _extended_labels(option_labels(_question(doc)))


def doc_to_target(doc: dict[str, Any]) -> int:
    """The human modal option: lm-eval wants a target; culturesim's scores do not use it."""
    human = list(doc["human_distribution"])
    return human.index(max(human))


def option_distribution(labels: list[str], loglikelihoods: list[float]) -> tuple[list[float], float]:
    """The distribution over ``labels`` from the log-likelihoods of ``_extended_labels(labels)``.

    Returns ``(distribution in label order, mass_on_options)``: the mass is the summed
    probability of the option numbers before renormalising (low: the model wanted to write
    something else).
    """
    extended = _extended_labels(labels)
    if len(loglikelihoods) != len(extended):
        raise ValueError(f"Expected {len(extended)} log-likelihoods for labels {labels}, got {len(loglikelihoods)}.")
    ll = dict(zip(extended, loglikelihoods))
    scores = []
    for label in labels:
        logp = ll[label]
        if label + DIGITS[0] in ll:
            p_continue = sum(math.exp(ll[label + d] - logp) for d in DIGITS)
            logp += math.log(max(1.0 - p_continue, 1e-300))
        scores.append(logp)
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    total = sum(weights)
    return [w / total for w in weights], min(1.0, math.exp(top) * total)


def process_results(doc: dict[str, Any], results: list[tuple[float, bool]]) -> dict[str, dict[str, Any]]:
    """One item per metric: the question's model distribution and what scoring it needs."""
    question = _question(doc)
    distribution, mass = option_distribution(option_labels(question), [float(ll) for ll, _ in results])
    item = {
        "id": question.id,
        "distribution": distribution,
        "human": list(question.human_distribution),
        "ordinal": question.ordinal,
        "value_dimensions": list(question.value_dimensions),
        "mass_on_options": mass,
    }
    return {name: item for name in METRICS}


# ------------------------------------------------------------------------------ aggregation


@lru_cache(maxsize=8)
def _alignment_cached(key: str) -> dict[str, Any]:
    items = json.loads(key)
    return compute_alignment(
        probabilities=[it["distribution"] for it in items],
        references=[it["human"] for it in items],
        ordinal=[it["ordinal"] for it in items],
        value_dimensions=[it["value_dimensions"] for it in items],
        question_ids=[it["id"] for it in items],
        bootstrap_samples=BOOTSTRAP_SAMPLES,
        seed=0,
    )


def alignment(items: list[dict[str, Any]]) -> dict[str, Any]:
    """``compute_alignment`` over a task's items (computed once for all of its metrics)."""
    return _alignment_cached(json.dumps(items, sort_keys=True))


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _overall(key: str):
    def aggregate(items: list[dict[str, Any]]) -> float:
        return _number(alignment(items)[key])

    aggregate.__name__ = key
    return aggregate


def _per_dimension(dimension: str, key: str):
    def aggregate(items: list[dict[str, Any]]) -> float:
        block = (alignment(items).get("per_dimension") or {}).get(dimension)
        return _number(block[key]) if block else float("nan")

    aggregate.__name__ = f"{key}_{dimension}"
    return aggregate


def mass_on_options(items: list[dict[str, Any]]) -> float:
    """Mean probability the model put on the option numbers (not a metric of ``compute_alignment``)."""
    return sum(it["mass_on_options"] for it in items) / len(items)


# metric name (as in the YAML metric_list) -> aggregation
AGGREGATIONS = {
    "kl": _overall("kl_mean"),
    "kl_ci_low": _overall("kl_ci_low"),
    "kl_ci_high": _overall("kl_ci_high"),
    "js": _overall("js_mean"),
    "js_ci_low": _overall("js_ci_low"),
    "js_ci_high": _overall("js_ci_high"),
    "wasserstein": _overall("wasserstein_mean"),
    "match_rate": _overall("match_rate"),
    "match_rate_ci_low": _overall("match_rate_ci_low"),
    "match_rate_ci_high": _overall("match_rate_ci_high"),
    "mass_on_options": mass_on_options,
}
for _dim in VALUE_DIMENSIONS:
    AGGREGATIONS[f"kl_{_dim}"] = _per_dimension(_dim, "kl_mean")
    AGGREGATIONS[f"js_{_dim}"] = _per_dimension(_dim, "js_mean")
METRICS = tuple(AGGREGATIONS)
globals().update({f"agg_{name}": fn for name, fn in AGGREGATIONS.items()})  # the YAML's !function names
