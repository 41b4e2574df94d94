"""The option log-probability estimator: a model's answer distribution from one forward pass.

The second way to read a local model's opinion (OpinionQA, Santurkar et al. 2023; GlobalOpinionQA,
Durmus et al. 2023): instead of sampling many simulated participants and parsing their answers,
ask once, prefill the assistant's reply with ``Answer:``, and read the probability the model puts
on each option number as what comes next. Comparing it item by item with DEF sampling shows how
far the two estimators agree, and what sampling costs.

How an option is scored (full-sequence, not first-token): option ``k`` is the continuation
``" k"`` after the prompt (tokenised together with the prompt, so a tokenizer that merges the space
into the number, as Llama 3 does, is handled). Its probability is the product of its tokens'
probabilities; when its number is a prefix of another option's (``1`` and ``10``..``19`` with
digit-by-digit tokenizers such as SmolLM2's), it is also multiplied by the probability that the
number ends there (the next token is not a digit), so ``1`` and ``12`` are told apart. The
probabilities are renormalised over the question's options; ``mass_on_options`` is their sum
before that (low mass means the model wanted to say something else).

Cost: the positions needed for all options of a question lie on one or a few sequences (the
prompt, plus the prompt followed by shared number prefixes such as ``" 1"``), so a question with
up to nine options is one sequence, and ten to nineteen options is still one sequence (the prompt
plus ``" 1"``) with digit tokenizers. Sequences are batched, left-padded, and only the last few
positions go through the LM head (``logits_to_keep``).

Limitations: only the canonical tokenisation of each number is scored; the default prompt
builder is a plain English DEF-style prompt (pass ``simulator.prompts``' builder for the
localised templates); options are numbered 1..n in source order unless the builder says
otherwise.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from simulator.backends.transformers_backend import render_chat
from simulator.questions import Question

ANSWER_PREFIX = "Answer:"
LABEL_SEPARATOR = " "
"""What comes between ``Answer:`` and the option number in a well-formed reply."""
ESTIMATOR_VERSION = "logprob-1"

Messages = list[dict[str, str]]
PromptBuilder = Callable[[Question], "Messages | tuple[Messages, Sequence[str]]"]

COUNTRY_NAMES = {
    "US": "the United States",
    "CN": "China",
    "GB": "the United Kingdom",
    "DE": "Germany",
    "JP": "Japan",
    "IN": "India",
    "BR": "Brazil",
    "RU": "Russia",
}


def default_prompt_builder(question: Question) -> Messages:
    """The DEF template (English) with the options numbered 1..n in source order.

    Rendered for a US question: ``I want you to act as a citizen from the United States. You
    should obtain an answer from 4 choices. You should tell me the answer in the format 'Answer:'
    and explain afterward using 'Explanation:'. Request: <question>`` then one ``k. option`` line
    per option.
    """
    country = COUNTRY_NAMES.get(question.culture, question.culture)
    options = "\n".join(f"{k}. {text}" for k, text in enumerate(question.options, start=1))
    content = (
        f"I want you to act as a citizen from {country}. You should obtain an answer from "
        f"{question.num_options} choices. You should tell me the answer in the format 'Answer:' and explain "
        f"afterward using 'Explanation:'. Request: {question.question}\n{options}"
    )
    return [{"role": "user", "content": content}]


def _model_and_tokenizer(model_or_backend: Any) -> tuple[Any, Any]:
    if isinstance(model_or_backend, str):
        from simulator.backends.transformers_backend import TransformersBackend

        model_or_backend = TransformersBackend(model=model_or_backend)
    if isinstance(model_or_backend, tuple) and len(model_or_backend) == 2:
        return model_or_backend
    model = getattr(model_or_backend, "model", None)
    tokenizer = getattr(model_or_backend, "tokenizer", None)
    if model is None or tokenizer is None:
        raise TypeError(
            f"logprob_distributions needs a TransformersBackend, a (model, tokenizer) pair or a model name; "
            f"got {type(model_or_backend).__name__}."
        )
    return model, tokenizer


def _digit_token_ids(tokenizer: Any) -> list[int]:
    """Tokens made only of ASCII digits (no leading space): the ones that continue a number."""
    cache = getattr(tokenizer, "_culturesim_digit_ids", None)
    if cache is not None:
        return cache
    vocab = tokenizer.get_vocab()
    ids = sorted(i for piece, i in vocab.items() if piece and piece.isascii() and piece.isdigit())
    try:
        tokenizer._culturesim_digit_ids = ids
    except AttributeError:  # some tokenizers refuse new attributes; recompute next time
        pass
    return ids


class _Plan:
    """The sequences one question needs and how each option's probability is read off them."""

    def __init__(self, index: int, question: Question, common: list[int], continuations: list[tuple[int, ...]]):
        self.index = index
        self.question = question
        self.common = common
        self.continuations = continuations
        nodes: set[tuple[int, ...]] = set()
        self.internal: list[bool] = []
        for cont in continuations:
            nodes.update(cont[:j] for j in range(len(cont)))
            is_prefix = any(other != cont and other[: len(cont)] == cont for other in continuations)
            self.internal.append(is_prefix)
            if is_prefix:
                nodes.add(cont)
        self.nodes = nodes
        # Covering sequences: nodes that are not a proper prefix of another node.
        self.leaves = [n for n in nodes if not any(o != n and o[: len(n)] == n for o in nodes)]
        self.children: dict[tuple[int, ...], set[int]] = {n: set() for n in nodes}
        for cont in continuations:
            for j in range(len(cont)):
                self.children[cont[:j]].add(cont[j])
        self.node_logprobs: dict[tuple[int, ...], dict[int, float]] = {}
        self.node_digit_mass: dict[tuple[int, ...], float] = {}
        self.tokens_in = 0
        self.seconds = 0.0


def _plan_question(
    index: int, question: Question, tokenizer: Any, builder: PromptBuilder
) -> _Plan:
    built = builder(question)
    if isinstance(built, tuple):
        messages, labels = built
        labels = [str(label) for label in labels]
    else:
        messages, labels = built, [str(k) for k in range(1, question.num_options + 1)]
    if len(labels) != question.num_options:
        raise ValueError(
            f"The prompt builder gave {len(labels)} option labels for question {question.id!r}, "
            f"which has {question.num_options} options."
        )
    if len(set(labels)) != len(labels):
        raise ValueError(f"Option labels for question {question.id!r} are not unique: {labels}")
    text, special = render_chat(tokenizer, messages)
    text += ANSWER_PREFIX
    prompt_ids = tokenizer(text, add_special_tokens=special)["input_ids"]
    full = [tokenizer(text + LABEL_SEPARATOR + label, add_special_tokens=special)["input_ids"] for label in labels]
    common_len = len(prompt_ids)
    for ids in full:
        k = 0
        while k < min(common_len, len(ids)) and ids[k] == prompt_ids[k]:
            k += 1
        common_len = k
    if common_len == 0:
        raise ValueError(f"Could not align the prompt and its option continuations for question {question.id!r}.")
    continuations = [tuple(ids[common_len:]) for ids in full]
    if len(set(continuations)) != len(continuations) or any(not c for c in continuations):
        raise ValueError(
            f"Option labels of question {question.id!r} tokenise to identical or empty continuations: {labels}"
        )
    return _Plan(index, question, prompt_ids[:common_len], continuations)


def logprob_distributions(
    model_or_backend: Any,
    questions: Sequence[Question],
    prompt_builder: PromptBuilder | None = None,
    batch_size: int = 16,
) -> list[dict[str, Any]]:
    """Each question's option distribution from next-token probabilities, in question order.

    ``model_or_backend``: a ``TransformersBackend`` (its loaded ``.model``/``.tokenizer`` are
    reused), a ``(model, tokenizer)`` pair, or a model name for a new ``TransformersBackend``.
    ``prompt_builder(question)`` returns the chat messages (options numbered 1..n in source
    order), or ``(messages, labels)`` where ``labels[i]`` is how the prompt numbers source option
    ``i`` (for shuffled prompts). ``batch_size`` counts sequences per forward pass.

    Each result: ``question_id``, ``option_codes`` and ``distribution`` (source order, sums to 1),
    ``mass_on_options`` (probability on the option numbers before renormalising, in [0, 1]),
    ``tokens_in`` (tokens through the model), ``seconds`` (its share of the forward passes' wall
    time), ``sequences`` (forward sequences used) and ``estimator`` (version).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be >= 1")
    model, tokenizer = _model_and_tokenizer(model_or_backend)
    builder = prompt_builder or default_prompt_builder
    digits = _digit_token_ids(tokenizer)
    plans = [_plan_question(i, q, tokenizer, builder) for i, q in enumerate(questions)]

    # Every covering sequence of every question, batched in length order to limit padding.
    jobs = [(plan, leaf) for plan in plans for leaf in plan.leaves]
    jobs.sort(key=lambda job: len(job[0].common) + len(job[1]))
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    digit_index = torch.tensor(digits, dtype=torch.long, device=device) if digits else None
    for start in range(0, len(jobs), batch_size):
        batch = jobs[start : start + batch_size]
        started = time.perf_counter()
        sequences = [plan.common + list(leaf) for plan, leaf in batch]
        width = max(len(s) for s in sequences)
        keep = max(len(leaf) for _, leaf in batch) + 1
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            input_ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            attention[row, width - len(seq) :] = 1
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = model(
                input_ids=input_ids.to(device),
                attention_mask=attention.to(device),
                position_ids=positions.to(device),
                logits_to_keep=keep,
                use_cache=False,
            ).logits[:, -keep:, :]
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            digit_mass = torch.logsumexp(logprobs[:, :, digit_index], dim=-1) if digit_index is not None else None
        for row, (plan, leaf) in enumerate(batch):
            for j in range(len(leaf) + 1):
                node = leaf[:j]
                if node not in plan.nodes or node in plan.node_logprobs:
                    continue
                column = keep - 1 - (len(leaf) - j)
                plan.node_logprobs[node] = {t: float(logprobs[row, column, t]) for t in plan.children[node]}
                plan.node_digit_mass[node] = float(digit_mass[row, column]) if digit_mass is not None else -math.inf
        elapsed = time.perf_counter() - started
        total_tokens = sum(len(s) for s in sequences)
        for (plan, _), seq in zip(batch, sequences):
            plan.tokens_in += len(seq)
            plan.seconds += elapsed * len(seq) / total_tokens

    results = []
    for plan in plans:
        scores = []
        for cont, internal in zip(plan.continuations, plan.internal):
            logp = sum(plan.node_logprobs[cont[:j]][cont[j]] for j in range(len(cont)))
            if internal:
                # The number stops here rather than going on to a longer one (e.g. "1" vs "12").
                p_continue = math.exp(plan.node_digit_mass[cont])
                logp += math.log(max(1.0 - p_continue, 1e-300))
            scores.append(logp)
        top = max(scores)
        weights = [math.exp(s - top) for s in scores]
        total = sum(weights)
        mass = math.exp(top) * total
        results.append(
            {
                "question_id": plan.question.id,
                "option_codes": list(plan.question.option_codes),
                "distribution": [w / total for w in weights],
                "mass_on_options": min(1.0, mass),
                "tokens_in": plan.tokens_in,
                "seconds": plan.seconds,
                "sequences": len(plan.leaves),
                "estimator": ESTIMATOR_VERSION,
            }
        )
    return results


__all__ = [
    "ANSWER_PREFIX",
    "ESTIMATOR_VERSION",
    "LABEL_SEPARATOR",
    "default_prompt_builder",
    "logprob_distributions",
]
