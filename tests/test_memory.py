"""Memory: the paper's cap, cleaning and random deletion."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from culturesim.simulator.memory import Memory, MemoryEntry, clean_entry, memory_rng

REQUEST = "Do you favor or oppose the death penalty for persons convicted of murder?\n1. Oppose\n2. Favor"


def test_cleaning_keeps_request_answer_and_first_explanation_sentence():
    raw = ("Answer: 2. Favor\n\nExplanation: Justice must be served for the victims. "
           "Also, it deters crime. Many people in Texas agree.")
    entry = clean_entry(REQUEST, raw)
    assert entry == MemoryEntry(REQUEST, "Answer: 2. Favor\nExplanation: Justice must be served for the victims.")
    assert entry.messages() == [{"role": "user", "content": REQUEST},
                                {"role": "assistant", "content": entry.answer}]


def test_cleaning_drops_answers_without_label_or_with_ai_disclosure():
    assert clean_entry(REQUEST, "I would favor it, because justice matters.") is None
    assert clean_entry(REQUEST, "") is None
    assert clean_entry(REQUEST, "Answer:\n\nExplanation: none") is None
    assert clean_entry(REQUEST, "As an AI language model, I do not have opinions. Answer: 1") is None
    assert clean_entry(REQUEST, "Answer: 1\nExplanation: As an AI, I cannot vote.") is None
    # The instructions' quoted label is not an answer.
    assert clean_entry(REQUEST, "You asked for the format 'Answer:' but I will not use it.") is None


def test_cleaning_without_explanation_and_in_chinese():
    assert clean_entry(REQUEST, "Answer: 1").answer == "Answer: 1"
    raw = "答案：2\n解释：朋友在生活中很重要。我经常和朋友见面。"
    entry = clean_entry("在您的生活中，朋友有多重要？\n1. 非常重要\n2. 比较重要", raw, language="zh")
    assert entry.answer == "答案：2\n解释：朋友在生活中很重要。"
    assert clean_entry("问题", "作为一个AI语言模型，我没有观点。答案：1", language="zh") is None


def test_cap_is_never_exceeded_and_latest_answer_is_kept():
    memory = Memory(cap=3)
    for step in range(10):
        memory.update(f"request {step}", f"Answer: {step % 3 + 1}\nExplanation: Reason {step}.", memory_rng(1, 0, step))
        assert len(memory) == min(step + 1, 3)
        assert memory.entries[-1].request == f"request {step}"
    msgs = memory.messages()
    assert [m["role"] for m in msgs] == ["user", "assistant"] * 3


def test_dropped_answers_do_not_take_a_place():
    memory = Memory(cap=2)
    memory.update("q0", "Answer: 1", memory_rng(0, 0, 0))
    memory.update("q1", "As an AI language model I cannot answer. Answer: 1", memory_rng(0, 0, 1))
    memory.update("q2", "no label here", memory_rng(0, 0, 2))
    assert [e.request for e in memory.entries] == ["q0"]


def test_random_deletion_is_seeded_per_participant_and_step_and_uniform():
    def fill(seed: int, participant: int) -> list[str]:
        memory = Memory(cap=4)
        for step in range(5):
            memory.update(f"q{step}", "Answer: 1", memory_rng(seed, participant, step))
        return [e.request for e in memory.entries]

    # Step 4 deletes one of q0..q3, the index drawn by random.Random(f"{seed}:{participant}:4:memory").
    for seed in range(5):
        deleted = random.Random(f"{seed}:7:4:memory").randrange(4)
        expected = [f"q{i}" for i in range(4) if i != deleted] + ["q4"]
        assert fill(seed, 7) == expected
        assert fill(seed, 7) == fill(seed, 7)
    # Over many participants every earlier entry is deleted about equally often.
    deleted = Counter(next(f"q{i}" for i in range(4) if f"q{i}" not in fill(3, p)) for p in range(4000))
    assert set(deleted) == {"q0", "q1", "q2", "q3"}
    assert max(deleted.values()) - min(deleted.values()) < 200


def test_invalid_cap():
    with pytest.raises(ValueError, match="memory cap=0"):
        Memory(cap=0)


def test_japanese_labels_the_template_asks_for_are_read():
    entry = clean_entry("あなたの生活において家族はどのくらい重要ですか？\n1. 非常に重要\n2. やや重要",
                        "回答：2\n理由：家族はとても大切です。毎日会います。", language="ja")
    assert entry.answer == "回答：2\n理由：家族はとても大切です。"
