"""The option log-probability estimator against a brute-force scoring with the same model:
one full forward pass per option sequence, no batching, no shared prefixes."""

from __future__ import annotations

import math

import pytest
import torch

from culturesim.simulator.backends.transformers_backend import TransformersBackend, render_chat
from culturesim.simulator.estimators.logprob import ANSWER_PREFIX, LABEL_SEPARATOR, default_prompt_builder, logprob_distributions
from culturesim.simulator.questions import Question


def make_question(qid: str, text: str, options: list[str], culture: str = "US") -> Question:
    n = len(options)
    return Question(
        id=qid,
        culture=culture,
        language="en",
        question=text,
        options=tuple(options),
        option_codes=tuple(range(1, n + 1)),
        question_type="scale" if n > 2 else "single_choice",
        ordinal=n > 2,
        human_distribution=tuple([1 / n] * n),
        human_n=100,
    )


FEFAM = make_question(
    "gss.fefam",
    "It is much better for everyone involved if the man is the achiever outside the home and the woman takes "
    "care of the home and family.",
    ["Strongly agree", "Agree", "Disagree", "Strongly disagree"],
)
DIVORCE = make_question(  # an 11-option scale: "1" is a prefix of "10" and "11"
    "wvs.divorce",
    "Please tell me whether you think divorce can always be justified, never be justified, or something in "
    "between, on a scale from 1 (never justifiable) to 11 (always justifiable).",
    [str(k) for k in range(1, 12)],
)
GOD = make_question("gss.god", "Do you believe in God?", ["Yes", "No"])


@pytest.fixture(scope="module")
def embedded(embedded_backend) -> TransformersBackend:
    backend = embedded_backend()  # TransformersBackend() on the session's loaded model (conftest.py)
    yield backend
    backend.close()


def brute_force(backend: TransformersBackend, messages, labels: list[str]) -> list[float]:
    """P(the reply continues with " <label>" and the number ends there), by separate forward passes."""
    tok, model = backend.tokenizer, backend.model
    text, special = render_chat(tok, messages)
    text += ANSWER_PREFIX
    prompt = tok(text, add_special_tokens=special)["input_ids"]
    digit_ids = [i for piece, i in tok.get_vocab().items() if piece.isascii() and piece.isdigit()]
    probs = []
    for label in labels:
        full = tok(text + LABEL_SEPARATOR + label, add_special_tokens=special)["input_ids"]
        assert full[: len(prompt)] == prompt
        with torch.inference_mode():
            logp = torch.log_softmax(model(torch.tensor([full])).logits[0].double(), dim=-1)
        total = sum(float(logp[pos - 1, full[pos]]) for pos in range(len(prompt), len(full)))
        if any(other != label and other.startswith(label) for other in labels):
            total += math.log(1.0 - float(logp[-1, digit_ids].exp().sum()))
        probs.append(math.exp(total))
    return probs


@pytest.mark.slow
def test_distributions_match_brute_force_scoring(embedded):
    results = logprob_distributions(embedded, [FEFAM, DIVORCE, GOD], batch_size=16)
    assert [r["question_id"] for r in results] == ["gss.fefam", "wvs.divorce", "gss.god"]
    for question, result in zip([FEFAM, DIVORCE, GOD], results):
        labels = [str(k) for k in range(1, question.num_options + 1)]
        expected = brute_force(embedded, default_prompt_builder(question), labels)
        mass = sum(expected)
        assert len(result["distribution"]) == question.num_options
        assert result["option_codes"] == list(question.option_codes)
        assert math.isclose(sum(result["distribution"]), 1.0, abs_tol=1e-9)
        assert result["distribution"] == pytest.approx([p / mass for p in expected], abs=2e-4)
        assert result["mass_on_options"] == pytest.approx(mass, rel=2e-3)
        assert 0 < result["mass_on_options"] <= 1
        assert result["sequences"] == 1  # one forward sequence per question, even with 11 options
        text, _ = render_chat(embedded.tokenizer, default_prompt_builder(question))
        prompt_len = len(embedded.tokenizer(text + ANSWER_PREFIX, add_special_tokens=False)["input_ids"])
        assert result["tokens_in"] == prompt_len + (2 if question.num_options >= 10 else 1)
        assert result["seconds"] > 0


@pytest.mark.slow
def test_batch_size_does_not_change_the_numbers(embedded):
    together = logprob_distributions(embedded, [FEFAM, DIVORCE, GOD], batch_size=3)
    alone = logprob_distributions(embedded, [FEFAM, DIVORCE, GOD], batch_size=1)
    for a, b in zip(together, alone):
        assert a["distribution"] == pytest.approx(b["distribution"], abs=1e-5)


@pytest.mark.slow
def test_shuffled_prompt_labels_map_back_to_source_order(embedded):
    order = [2, 0, 3, 1]  # shown position -> source option

    def shuffled(question: Question):
        lines = "\n".join(f"{pos}. {question.options[src]}" for pos, src in enumerate(order, start=1))
        messages = [{"role": "user", "content": f"{question.question}\n{lines}\nAnswer with the number."}]
        labels = [""] * question.num_options
        for pos, src in enumerate(order, start=1):
            labels[src] = str(pos)
        return messages, labels

    [result] = logprob_distributions(embedded, [FEFAM], prompt_builder=shuffled)
    messages, labels = shuffled(FEFAM)
    expected = brute_force(embedded, messages, labels)  # expected[i]: source option i
    assert result["distribution"] == pytest.approx([p / sum(expected) for p in expected], abs=2e-4)


@pytest.mark.slow
def test_bad_inputs_are_refused(embedded):
    with pytest.raises(ValueError, match="batch_size=0"):
        logprob_distributions(embedded, [GOD], batch_size=0)
    with pytest.raises(ValueError, match="3 option labels"):
        logprob_distributions(embedded, [GOD], prompt_builder=lambda q: (default_prompt_builder(q), ["1", "2", "3"]))
    with pytest.raises(ValueError, match="not unique"):
        logprob_distributions(embedded, [GOD], prompt_builder=lambda q: (default_prompt_builder(q), ["1", "1"]))
    with pytest.raises(TypeError, match="TransformersBackend"):
        logprob_distributions(object(), [GOD])


def test_default_prompt_is_the_def_template():
    [message] = default_prompt_builder(GOD)
    assert message["role"] == "user"
    assert message["content"] == (
        "I want you to act as a citizen from the United States. You should obtain an answer from 2 choices. "
        "You should tell me the answer in the format 'Answer:' and explain afterward using 'Explanation:'. "
        "Request: Do you believe in God?\n1. Yes\n2. No"
    )
