"""How a run shows its questions beyond the plan: option order, label style, paraphrases.

Why: the invariance battery (``culturesim invariance``) asks the same questions under
controlled changes of presentation, and ``simulate --paraphrases DIR`` gives each
participant a reviewed rephrasing of the question (``culturesim dataset expand``). Both go
through the ordinary runner (one implementation of generation and parsing); the runner only
asks a :class:`Presentation` to render each (participant, question). A run made without one
renders exactly as before, and its ``config.json`` has no ``presentation`` key.

- ``order``: ``plan`` (the run's per-participant shuffle, or source order with
  ``--no-shuffle``), ``source``, or ``reverse`` (the source order backwards: a reversed
  scale for agree/disagree and importance items). Numeric scales (``question_type ==
  "scale"``) keep their order in every setting, since their numbers carry the meaning.
- ``labels``: ``numbers``, ``letters`` or ``text`` (``culturesim.simulator.labels``).
- ``paraphrases``: per question id, accepted variants; participant ``p`` sees the variant
  drawn by ``random.Random(f"{seed}:{p}:{question_id}:paraphrase")`` from the variants (and
  the source wording, unless ``include_original`` is off). Options never change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culturesim.simulator.labels import check_label_style
from culturesim.simulator.prompts import DEF_TEMPLATES, RenderedQuestion, option_order, render_question
from culturesim.simulator.questions import Question
from culturesim.simulator.questions import config_files

__all__ = ["ORDERS", "PARAPHRASES_CONFIG", "Paraphrases", "Presentation"]

ORDERS = ("plan", "source", "reverse")
PARAPHRASES_CONFIG = "paraphrases"
"""The dataset config name ``culturesim dataset expand`` writes (``data/paraphrases-<hash>.parquet``)."""


@dataclass(frozen=True)
class Paraphrases:
    """Accepted variants per question id: ``{question_id: ((variant_id, text), ...)}``."""

    variants: Mapping[str, tuple[tuple[str, str], ...]]
    source: str = ""
    """Where they were read from (recorded in config.json)."""
    sha256: str = ""
    """Hash of the variants (ids and texts), so a resumed run checks it got the same ones."""
    include_original: bool = True
    """Whether the source wording is one of the choices."""

    @classmethod
    def load(cls, path: str | Path, questions: Sequence[Question] | None = None,
             include_original: bool = True) -> "Paraphrases":
        """Read a folder written by ``culturesim dataset expand`` (its ``paraphrases`` config).

        With ``questions``, each variant's options must equal its question's (ValueError
        otherwise: the variants were made for another version of the dataset).
        """
        import pyarrow.parquet as pq

        folder = Path(path)

        file = config_files(folder).get(PARAPHRASES_CONFIG) if (folder / "data").is_dir() else None
        if file is None:
            raise FileNotFoundError(f"--paraphrases {folder}: no data/{PARAPHRASES_CONFIG}-*.parquet (write one with "
                                    f"`culturesim dataset expand --out {folder}`)")
        rows = pq.read_table(file).to_pylist()
        by_id = {q.id: q for q in questions or ()}
        variants: dict[str, list[tuple[str, str]]] = {}
        for r in rows:
            q = by_id.get(r["question_id"])
            if q is not None and (list(r["options"]) != list(q.options) or list(r["option_codes"]) != list(q.option_codes)):
                raise ValueError(
                    f"--paraphrases {folder}: variant {r['id']!r} has options {list(r['options'])!r} but question "
                    f"{q.id!r} has {list(q.options)!r}; expand the current dataset again"
                )
            variants.setdefault(r["question_id"], []).append((r["id"], r["question"]))
        frozen = {k: tuple(sorted(v)) for k, v in sorted(variants.items())}
        digest = hashlib.sha256(repr(sorted(frozen.items())).encode()).hexdigest()
        return cls(frozen, str(folder.resolve()), digest, include_original)

    def choose(self, question: Question, seed: int, participant_id: int) -> tuple[str | None, str]:
        """``(variant id or None for the source wording, question text)`` for one participant."""
        pool: list[tuple[str | None, str]] = list(self.variants.get(question.id, ()))
        if self.include_original or not pool:
            pool.insert(0, (None, question.question))
        return random.Random(f"{seed}:{participant_id}:{question.id}:paraphrase").choice(pool)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "sha256": self.sha256, "include_original": self.include_original,
                "questions": len(self.variants), "variants": sum(len(v) for v in self.variants.values())}


@dataclass(frozen=True)
class Presentation:
    """Option order, label style and paraphrases for a run (see the module docstring)."""

    order: str = "plan"
    labels: str = "numbers"
    paraphrases: Paraphrases | None = field(default=None)

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise ValueError(f"Unknown option order {self.order!r}; choose one of {', '.join(ORDERS)}")
        check_label_style(self.labels)

    def order_for(self, question: Question, seed: int, participant_id: int, shuffle: bool) -> tuple[int, ...]:
        k = question.num_options
        if question.question_type == "scale" or self.order == "source":
            return tuple(range(k))
        if self.order == "reverse":
            return tuple(range(k - 1, -1, -1))
        return option_order(question, seed, participant_id, shuffle)

    def render(self, question: Question, country: str, seed: int, participant_id: int, location: Any,
               shuffle: bool, templates: dict[str, dict[str, str]] = DEF_TEMPLATES,
               demographics: str | None = None) -> RenderedQuestion:
        variant = None
        shown = question
        if self.paraphrases is not None:
            variant, text = self.paraphrases.choose(question, seed, participant_id)
            if variant is not None:
                shown = dataclasses.replace(question, question=text)
        labels = "numbers" if question.question_type == "scale" else self.labels
        order = self.order_for(question, seed, participant_id, shuffle)
        rendered = render_question(shown, country, order, location, templates, labels=labels,
                                   demographics=demographics)
        return dataclasses.replace(rendered, variant=variant) if variant else rendered

    def to_dict(self) -> dict[str, Any]:
        return {"order": self.order, "labels": self.labels,
                "paraphrases": self.paraphrases.to_dict() if self.paraphrases else None}
