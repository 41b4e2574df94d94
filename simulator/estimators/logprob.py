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
builder is a plain English DEF-style prompt (pass ``culturesim.simulator.prompts``' builder for the
localised templates); options are numbered 1..n in source order unless the builder says
otherwise.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from culturesim.simulator.backends.transformers_backend import render_chat
from culturesim.simulator.questions import Question
from culturesim.simulator.types import GenerationConfig, GenerationRequest
from culturesim.simulator.runfolder import Status

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
        # torch and transformers load only when a model is named here, not for remote log-prob runs
        from culturesim.simulator.backends.transformers_backend import TransformersBackend

        model_or_backend = TransformersBackend(model=model_or_backend)
    if isinstance(model_or_backend, tuple) and len(model_or_backend) == 2:
        return model_or_backend
    if callable(getattr(model_or_backend, "next_token_logprobs", None)):
        return model_or_backend, model_or_backend.tokenizer  # scores in-process itself (llamacpp)
    model = getattr(model_or_backend, "model", None)
    tokenizer = getattr(model_or_backend, "tokenizer", None)
    if model is None or tokenizer is None:
        raise TypeError(
            f"logprob_distributions needs a TransformersBackend, a LlamaCppBackend, a (model, tokenizer) pair or a "
            f"model name; got {type(model_or_backend).__name__}."
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

    def __init__(self, index: int, question: Question, common: list[int], continuations: list[tuple[int, ...]],
                 key: str = ""):
        self.index = index
        self.key = key
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


@dataclass(frozen=True)
class OptionPrompt:
    """One prompt to read option probabilities from: the chat ``messages`` and, per source
    option ``i``, the label the prompt shows for it (``labels[i]``, e.g. ``"3"`` when the
    option is displayed third). ``key`` identifies the item in results (default: question id)."""

    question: Question
    messages: tuple[dict[str, str], ...]
    labels: tuple[str, ...]
    key: str = ""


def _option_prompt(question: Question, builder: PromptBuilder) -> OptionPrompt:
    built = builder(question)
    if isinstance(built, tuple):
        messages, labels = built
        labels = [str(label) for label in labels]
    else:
        messages, labels = built, [str(k) for k in range(1, question.num_options + 1)]
    return OptionPrompt(question, tuple(messages), tuple(labels), question.id)


def check_labels(item: OptionPrompt) -> None:
    """Raise ValueError unless ``item`` has one unique label per option."""
    question, labels = item.question, item.labels
    if len(labels) != question.num_options:
        raise ValueError(
            f"The prompt builder gave {len(labels)} option labels for question {question.id!r}, "
            f"which has {question.num_options} options."
        )
    if len(set(labels)) != len(labels):
        raise ValueError(f"Option labels for question {question.id!r} are not unique: {list(labels)}")


def _plan_item(index: int, item: OptionPrompt, tokenizer: Any) -> _Plan:
    check_labels(item)
    question, labels = item.question, item.labels
    text, special = render_chat(tokenizer, list(item.messages))
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
            f"Option labels of question {question.id!r} tokenise to identical or empty continuations: {list(labels)}"
        )
    return _Plan(index, question, prompt_ids[:common_len], continuations, item.key or question.id)


def _forward_logprobs(model: Any, sequences: list[list[int]], width: int, keep: int, pad: int, device: Any,
                      digit_index: Any) -> tuple[Any, Any]:
    """One left-padded forward pass of a transformers model: the log-softmax at the last ``keep``
    positions of each sequence, and the log-probability mass on digit tokens there."""
    input_ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
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
    return logprobs, digit_mass


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
    builder = prompt_builder or default_prompt_builder
    return logprob_items(model_or_backend, [_option_prompt(q, builder) for q in questions], batch_size)


def logprob_items(model_or_backend: Any, items: Sequence[OptionPrompt], batch_size: int = 16) -> list[dict[str, Any]]:
    """``logprob_distributions`` for explicit prompts (one per participant and question, say):
    the same results, in item order, each with the item's ``key``."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be >= 1")
    model, tokenizer = _model_and_tokenizer(model_or_backend)
    digits = _digit_token_ids(tokenizer)
    plans = [_plan_item(i, item, tokenizer) for i, item in enumerate(items)]

    # Every covering sequence of every question, batched in length order to limit padding.
    jobs = [(plan, leaf) for plan in plans for leaf in plan.leaves]
    jobs.sort(key=lambda job: len(job[0].common) + len(job[1]))
    # A backend with next_token_logprobs (llamacpp) returns the log-softmax itself, on the CPU.
    scorer = getattr(model, "next_token_logprobs", None)
    device = torch.device("cpu") if scorer is not None else next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    digit_index = torch.tensor(digits, dtype=torch.long, device=device) if digits else None
    for start in range(0, len(jobs), batch_size):
        batch = jobs[start : start + batch_size]
        started = time.perf_counter()
        sequences = [plan.common + list(leaf) for plan, leaf in batch]
        width = max(len(s) for s in sequences)
        keep = max(len(leaf) for _, leaf in batch) + 1
        if scorer is not None:
            logprobs = torch.from_numpy(scorer(sequences, keep))
            digit_mass = torch.logsumexp(logprobs[:, :, digit_index], dim=-1) if digit_index is not None else None
        else:
            logprobs, digit_mass = _forward_logprobs(model, sequences, width, keep, pad, device, digit_index)
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
                "key": plan.key,
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


# --------------------------------------------------------------------------------------
# The remote path: an OpenAI-compatible server's top log-probabilities
# --------------------------------------------------------------------------------------

REMOTE_ESTIMATOR_VERSION = "logprob-remote-1"
REMOTE_TOP_LOGPROBS = 20
"""Top tokens asked for per position (OpenAI's maximum; vLLM and llama.cpp accept it too)."""
REMOTE_MAX_TOKENS = 16
"""Greedy tokens generated to reach the answer number ("Answer: 2" is 3 to 4 tokens)."""


def remote_logprob_items(
    backend: Any,
    items: Sequence[OptionPrompt],
    top_logprobs: int = REMOTE_TOP_LOGPROBS,
    max_new_tokens: int = REMOTE_MAX_TOKENS,
) -> list[dict[str, Any]]:
    """Option distributions from a chat server's ``top_logprobs``, one request per item.

    Why this way: a chat API cannot prefill the reply with ``Answer:`` or score a given
    continuation portably, but every OpenAI-compatible server that returns log-probabilities
    (OpenAI, vLLM, SGLang, llama.cpp) returns the top tokens at each generated position. So
    the reply is generated greedily (temperature 0) for up to ``max_new_tokens`` tokens, the
    *answer position* is found (the first token starting with a digit after an ``Answer``
    label, else the first token starting with a digit), and each option's probability is
    read there: the summed probability of the top tokens that spell its label (``"2"`` and
    ``" 2"`` both count). Labels longer than one token (``"10"`` as ``"1"`` + ``"0"`` in
    digit-by-digit tokenizers) and labels that are a prefix of another (``"1"`` before ``"10"``,
    which also needs the probability that the number ends) use the next position, which the
    server conditions on the token it generated: they are resolved only when that token is
    the label's first piece. Otherwise the row is ``no_answer`` with ``detail`` saying which
    labels were unresolved (tokenizers with multi-digit tokens, as in Llama 3 and GPT-4, never
    need this).

    Differences from the local path, all recorded per row: probabilities below the server's
    top ``top_logprobs`` count as 0, so ``mass_on_options`` is a lower bound; the answer
    position follows the model's own greedy reply rather than a prefilled ``Answer:``.

    Each result: ``key``, ``question_id``, ``status`` (``ok``, ``no_answer``, ``error``),
    ``distribution`` (source order; None unless ok), ``mass_on_options``, ``answer_token``,
    ``answer_index``, ``detail``, ``raw_text``, ``tokens_in``, ``tokens_out``, ``seconds``,
    ``attempts``, ``error``, ``estimator``.
    """

    if not 1 <= top_logprobs <= 100:
        raise ValueError(f"top_logprobs={top_logprobs!r} must be between 1 and 100 (OpenAI allows at most 20)")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens!r} must be >= 1")
    for item in items:
        check_labels(item)
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, temperature=None, top_p=None,
                              top_logprobs=top_logprobs)
    requests = [GenerationRequest(messages=tuple(item.messages), config=config, key=item.key or item.question.id)
                for item in items]
    results = backend.generate(requests)
    if len(results) != len(requests):
        raise RuntimeError(f"Backend {getattr(backend, 'name', '?')!r} returned {len(results)} results for {len(requests)} requests")
    return [read_top_logprobs(item, result) for item, result in zip(items, results)]


def _piece(token: str) -> str:
    """A token's text without leading whitespace (``" 2"`` -> ``"2"``)."""
    return token.lstrip()


def _answer_index(tokens: list[dict[str, Any]]) -> int | None:
    starts, text = [], ""
    for token in tokens:
        starts.append(len(text))
        text += token["token"]
    digit_positions = [i for i, t in enumerate(tokens) if _piece(t["token"])[:1].isdigit()]
    if not digit_positions:
        return None
    label = text.lower().find("answer")
    if label >= 0:
        after = [i for i in digit_positions if starts[i] >= label]
        if after:
            return after[0]
    return digit_positions[0]


def read_top_logprobs(item: OptionPrompt, result: Any) -> dict[str, Any]:
    """One item's option distribution from a ``GenerationResult`` with ``logprobs``; never raises
    on what the server sent (see ``remote_logprob_items``)."""
    question = item.question
    row: dict[str, Any] = {
        "key": item.key or question.id, "question_id": question.id, "option_codes": list(question.option_codes),
        "status": Status.OK, "distribution": None, "mass_on_options": None, "answer_token": None, "answer_index": None,
        "detail": None, "raw_text": result.text or "", "tokens_in": result.input_tokens,
        "tokens_out": result.output_tokens, "seconds": result.latency_s, "attempts": result.attempts,
        "error": result.error, "estimator": REMOTE_ESTIMATOR_VERSION,
    }
    if result.error:
        row.update(status=Status.ERROR, detail="the request failed")
        return row
    tokens = result.logprobs
    if not tokens:
        row.update(status=Status.ERROR, detail="the server returned no log-probabilities (does it support logprobs/top_logprobs?)")
        return row
    i = _answer_index(tokens)
    if i is None:
        row.update(status=Status.NO_ANSWER, detail=f"no token starting with a digit in the {len(tokens)} generated tokens")
        return row
    chosen = _piece(tokens[i]["token"])
    row.update(answer_index=i, answer_token=tokens[i]["token"])
    here: dict[str, float] = {}
    for token, logprob in tokens[i]["top"]:
        here[_piece(token)] = here.get(_piece(token), 0.0) + math.exp(logprob)
    following: dict[str, float] | None = None
    if i + 1 < len(tokens):
        following = {}
        for token, logprob in tokens[i + 1]["top"]:  # conditioned on the generated token `chosen`
            following[token] = following.get(token, 0.0) + math.exp(logprob)
    labels = list(item.labels)
    # A tokenizer with multi-digit tokens ("10" is one token, as in Llama 3 and GPT-4) spells
    # "10" that way, so a "1" token is the whole number: no end-of-number correction needed.
    merges_digits = any(len(piece) >= 2 and piece.isdigit() for piece in here)
    probs, unresolved = [], []
    for label in labels:
        longer = not merges_digits and any(other != label and other.startswith(label) for other in labels)
        p = 0.0
        for piece, prob in here.items():
            if not piece or not label.startswith(piece):
                continue
            rest = label[len(piece):]
            if not rest and not longer:
                p += prob
                continue
            if piece != chosen or following is None:
                unresolved.append(label)
                continue
            if rest:
                p += prob * sum(q for t, q in following.items() if t == rest)
                if longer:
                    unresolved.append(label)  # would need a third position
            else:  # the number must end here: the next token does not continue it with a digit
                p += prob * max(0.0, 1.0 - sum(q for t, q in following.items() if t[:1].isdigit()))
        probs.append(p)
    if unresolved:
        row.update(status=Status.NO_ANSWER, detail=(
            f"labels {sorted(set(unresolved))} need the next position conditioned on another first token "
            f"than the generated {chosen!r}"))
        return row
    total = sum(probs)
    if total <= 0:
        row.update(status=Status.NO_ANSWER, detail=f"no option label among the top {len(tokens[i]['top'])} tokens at the answer position")
        return row
    row.update(distribution=[p / total for p in probs], mass_on_options=min(1.0, total))
    return row


__all__ = [
    "ANSWER_PREFIX",
    "ESTIMATOR_VERSION",
    "LABEL_SEPARATOR",
    "OptionPrompt",
    "REMOTE_ESTIMATOR_VERSION",
    "check_labels",
    "default_prompt_builder",
    "logprob_distributions",
    "logprob_items",
    "read_top_logprobs",
    "remote_logprob_items",
]
