"""A participant's conversation memory, with the DEF paper's semantics.

Why: answering earlier questions shapes later answers, the way a real respondent's survey
builds up; the memory modification gives each simulated participant that history, kept
short and clean so a small model is not derailed by its own failures.

Semantics (paper, section "Memory modification"):

- Each participant has a cap drawn uniformly from ``1..max_memory`` (``culturesim.simulator.participants``).
- After each answer the memory is cleaned: an answer without an ``Answer:`` label (or the
  template language's label, 答案/回答) or with an AI self-disclosure ("As an AI language
  model") is dropped; of the rest only the request part of the query (question and
  numbered options, without the role-play instructions), the answer, and the first sentence
  of the explanation are kept. Entries are stored already cleaned, so the stored memory
  never holds a dropped kind.
- When the memory is full, a random earlier entry is deleted (with an RNG seeded per
  participant and step: ``random.Random(f"{seed}:{participant}:{step}:memory")``), then the
  new entry is added, so the latest answer is always remembered.
- The model sees the memory as previous chat turns: user = request, assistant = the kept
  answer (``Answer: ...`` / ``Explanation: ...`` in the template's labels).

Everything is a pure function of (memory, request, raw answer, RNG), so a resumed run
rebuilds the exact memory from the rows it has written.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from culturesim.simulator.parsing import first_sentence, has_ai_disclosure, split_answer_explanation
from culturesim.simulator.prompts import answer_labels

__all__ = ["MEMORY_VERSION", "Memory", "MemoryEntry", "clean_entry", "memory_rng"]

MEMORY_VERSION = "1.0"
"""Bump whenever cleaning or deletion changes; recorded in every run."""


@dataclass(frozen=True)
class MemoryEntry:
    """One remembered exchange: the request and the cleaned answer."""

    request: str
    answer: str

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.request}, {"role": "assistant", "content": self.answer}]


def clean_entry(request: str, raw_text: str, language: str = "en") -> MemoryEntry | None:
    """The entry memory keeps for one answer, or None when cleaning drops it.

    Dropped: no answer label with text after it, or an AI self-disclosure anywhere. Kept:
    the first line of the answer and the first sentence of the explanation, relabelled in
    the template language (``Answer: 2. Agree`` / ``Explanation: I think ...``).
    """
    text = raw_text or ""
    if has_ai_disclosure(text):
        return None
    answer, explanation = split_answer_explanation(text)
    answer_line = next((line.strip() for line in answer.splitlines() if line.strip()), "")
    if not answer_line:
        return None
    answer_label, explanation_label = answer_labels(language)
    kept = _labelled(answer_label, answer_line)
    sentence = first_sentence(explanation) if explanation else ""
    if sentence:
        kept += "\n" + _labelled(explanation_label, sentence)
    return MemoryEntry(request=request, answer=kept)


def _labelled(label: str, text: str) -> str:
    return f"{label}{text}" if label.endswith("：") else f"{label} {text}"


def memory_rng(seed: int, participant_id: int, step: int) -> random.Random:
    """The RNG that chooses which entry to delete at ``step`` (reproducible on resume)."""
    return random.Random(f"{seed}:{participant_id}:{step}:memory")


@dataclass
class Memory:
    """A capped list of cleaned entries."""

    cap: int
    entries: list[MemoryEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.cap < 1:
            raise ValueError(f"memory cap={self.cap!r} must be >= 1")

    def __len__(self) -> int:
        return len(self.entries)

    def messages(self) -> list[dict[str, str]]:
        """The memory as previous chat turns, oldest first."""
        return [m for entry in self.entries for m in entry.messages()]

    def add(self, entry: MemoryEntry | None, rng: random.Random) -> int | None:
        """Add a cleaned entry (None: nothing to add); when full, first delete a random
        earlier entry. Returns the deleted index, or None."""
        if entry is None:
            return None
        deleted = None
        if len(self.entries) >= self.cap:
            deleted = rng.randrange(len(self.entries))
            del self.entries[deleted]
        self.entries.append(entry)
        return deleted

    def update(self, request: str, raw_text: str, rng: random.Random, language: str = "en") -> MemoryEntry | None:
        """Clean one answer and add it; returns the kept entry (None when dropped)."""
        entry = clean_entry(request, raw_text, language)
        self.add(entry, rng)
        return entry

    def to_dict(self) -> dict[str, Any]:
        return {"cap": self.cap, "entries": [{"request": e.request, "answer": e.answer} for e in self.entries]}
