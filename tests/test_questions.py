"""Question selection from the committed dataset: a short run samples the survey's breadth."""

from __future__ import annotations

from collections import Counter

import pytest

from culturesim.simulator.questions import load_questions, spread_over_topics


def test_limit_spreads_over_sources_and_topics_not_the_first_ids():
    everything = load_questions("US")
    ten = load_questions("US", limit=10)
    assert len(ten) == 10
    assert [q.id for q in ten] != [q.id for q in everything[:10]]  # the first ten by id are all abortion items
    assert {q.source for q in ten} == {"GSS", "WVS"}
    assert max(Counter(q.topic for q in ten).values()) == 1  # ten different topics
    order = {q.id: k for k, q in enumerate(everything)}
    assert [order[q.id] for q in ten] == sorted(order[q.id] for q in ten)  # dataset order kept


def test_spread_is_deterministic_nested_and_complete():
    small = [q.id for q in load_questions("US", limit=7)]
    assert small == [q.id for q in load_questions("US", limit=7)]
    assert set(small) <= {q.id for q in load_questions("US", limit=40)}
    assert len(load_questions("US", limit=10_000)) == len(load_questions("US"))
    # Within one topic the questions come in dataset order.
    abortion = load_questions("US", topics=["Abortion"])
    assert [q.id for q in spread_over_topics(abortion, 3)] == [q.id for q in abortion[:3]]


def test_limit_must_be_positive():
    with pytest.raises(ValueError, match="limit=0"):
        load_questions("US", limit=0)
