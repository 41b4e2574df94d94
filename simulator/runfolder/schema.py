"""The run folder's contract: its file names, the statuses a response row may hold, the shape of a
row and the version fields of ``config.json``.

Why one module: the runner, the estimators, the merger, the scorer, the Space upload and the
tests all write or read the same files. With the names, the statuses and the row built here,
a new status or a renamed key is one edit, and a reader cannot drift from the writers. The
on-disk format is plain JSON: ``Status`` is a ``str`` enum, so ``Status.OK == "ok"`` and rows
hold the same strings they always did.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

__all__ = [
    "CONFIG_FILE",
    "LOCK_FILE",
    "PARSER_STATUSES",
    "PERSONA_FIELDS",
    "QUESTIONS_FILE",
    "RESPONSES_FILE",
    "ROW_TYPES",
    "RUN_FORMAT",
    "VERSION_SUFFIX",
    "WRITER_FILE",
    "Status",
    "now",
    "question_record",
    "recorded_versions",
    "response_row",
    "version_fields",
]

CONFIG_FILE = "config.json"
"""Everything needed to reproduce the run (no secret); written last, so it commits the set-up."""
RESPONSES_FILE = "responses.jsonl"
"""One row per participant x question, append-only."""
QUESTIONS_FILE = "questions.jsonl"
"""The questions asked, one dataset record a line: what the run is scored against."""
LOCK_FILE = ".culturesim.lock"
"""The writer lock (``RunLock``)."""
WRITER_FILE = ".culturesim.writer"
"""Who holds the lock: PID, host, command, since when."""
RUN_FORMAT = "culturesim-run"
"""The ``format`` entry of ``config.json``."""


class Status(str, Enum):
    """The ``status`` of a response row. Only ``ok`` rows carry an answer; every other status is a
    non-answer, counted and reported apart (``Status.meaning`` says what each one means)."""

    OK = "ok"
    NO_ANSWER = "no_answer"
    INVALID_OPTION = "invalid_option"
    MULTIPLE_FOR_SINGLE = "multiple_for_single"
    NUMBER_TEXT_DISAGREE = "number_text_disagree"
    REFUSAL = "refusal"
    EMPTY = "empty"
    ERROR = "error"

    def __str__(self) -> str:  # "ok", not "Status.OK", in messages and f-strings
        return self.value

    @property
    def meaning(self) -> str:
        """One line on what this status says about the response."""
        return _MEANINGS[self]


_MEANINGS = {
    Status.OK: "the response names exactly one option (or a valid set for multiple choice)",
    Status.NO_ANSWER: "no option could be read from the response",
    Status.INVALID_OPTION: "the response names an option number that does not exist",
    Status.MULTIPLE_FOR_SINGLE: "several different options for a single-choice or scale question (\"2 and 3\")",
    Status.NUMBER_TEXT_DISAGREE: "the option number and the option text name different options (\"1. No\" where 1 is "
                                 "\"Yes\"); parser 1.0 wrote multiple_for_single for this, readers accept both",
    Status.REFUSAL: "the model declines to answer or says it is an AI, without an answer",
    Status.EMPTY: "the server answered with nothing to read (content: null, choices: [])",
    Status.ERROR: "the request failed after its retries (no text); simulate --resume asks it again",
}

PARSER_STATUSES: tuple[Status, ...] = (Status.OK, Status.NO_ANSWER, Status.INVALID_OPTION, Status.MULTIPLE_FOR_SINGLE,
                                       Status.NUMBER_TEXT_DISAGREE, Status.REFUSAL)
"""The statuses the parser concludes from a text; the runner adds ``empty`` and ``error``."""

ROW_TYPES: dict[str, type | tuple[type, ...]] = {"participant_id": int, "question_id": str, "status": str}
"""The keys every row must hold, with their types: what resuming, merging and scoring rely on."""

PERSONA_FIELDS: dict[str, str] = {
    "location": "DEF prompt modification: {region, city, names} of the participant's drawn location, or null.",
    "memory_cap": "DEF memory modification: the participant's memory cap, or null.",
    "respondent_id": "Only with `simulate --personas respondents`: the respondents config's id of the real respondent "
                     "the participant stands for (e.g. `gss2022.17`); also written by the humans-N references.",
    "sex": "Only with `--personas respondents`: `female`, `male` or null (not recorded), as the respondents config "
           "spells it; structure fidelity's sex x age spread reads it.",
    "age_group": "Only with `--personas respondents`: `18-29`, `30-49`, `50+` or null (not recorded).",
    "reference": "Rows of a humans-N reference: the reference's name.",
}
"""The keys a row's ``persona`` may hold and what each means; a key absent from a row is absent
from its run's personas (readers use ``persona.get``). A new persona attribute is added here."""

VERSION_SUFFIX = "_version"


def now() -> str:
    """The current UTC time as the run folder records it (ISO 8601, seconds)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def question_record(question: Any) -> dict[str, Any]:
    """A question (``culturesim.simulator.questions.Question``) as one line of ``questions.jsonl``:
    the dataset record's columns, tuples as lists."""
    rec = dataclasses.asdict(question)
    for key in ("options", "option_codes", "human_distribution", "value_dimensions", "demographics"):
        rec[key] = list(rec[key])
    return rec


def version_fields(versions: Mapping[str, Any]) -> dict[str, Any]:
    """``config.json``'s flat version keys: ``{"prompt": "1.0"}`` -> ``{"prompt_version": "1.0"}``
    (names given with the suffix keep it), in the order given. Scoring reads these keys."""
    return {name if name.endswith(VERSION_SUFFIX) else f"{name}{VERSION_SUFFIX}": value
            for name, value in versions.items()}


def recorded_versions(config: Mapping[str, Any]) -> dict[str, Any]:
    """The versions a run's ``config.json`` records, as ``version_fields`` takes them: its flat
    ``*_version`` keys, and the ``versions`` object of a config written elsewhere in that shape."""
    nested = config.get("versions")
    found = {str(k).removesuffix(VERSION_SUFFIX): v for k, v in nested.items()} if isinstance(nested, Mapping) else {}
    found.update({k.removesuffix(VERSION_SUFFIX): v for k, v in config.items() if k.endswith(VERSION_SUFFIX)})
    return found


def response_row(
    *,
    participant_id: int,
    question_id: str,
    step: int,
    parallel_id: str | None,
    plan: str,
    persona: dict[str, Any],
    generation_config: dict[str, Any] | None,
    prompt: Sequence[dict[str, str]],
    option_order: Sequence[int],
    raw_text: str,
    status: Status | str,
    positions: Sequence[int] = (),
    option_indices: Sequence[int] = (),
    parsed: Sequence[int] = (),
    parse_method: str,
    ai_disclosure: bool,
    input_tokens: int,
    output_tokens: int,
    attempts: int,
    error: str | None,
    latency_s: float,
    empty_completion: str | None = None,
    estimator: str | None = None,
    distribution: Sequence[float] | None = None,
) -> dict[str, Any]:
    """One line of ``responses.jsonl``.

    ``positions`` are 0-based DISPLAYED positions, ``option_indices`` the same options in SOURCE
    order, ``parsed`` their source codes. A sampling row (``estimator`` None) records
    ``empty_completion`` (why the server's answer was empty, or None); a row of another estimator
    (``logprob``, ``verbalized``) records ``estimator`` and ``distribution`` (source order, None
    unless ``ok``) instead. ``status`` is checked against ``Status`` and written as its string.
    """
    row: dict[str, Any] = {
        "key": f"{participant_id}:{question_id}",
        "participant_id": participant_id,
        "question_id": question_id,
        "step": step,
        "parallel_id": parallel_id,
        "plan": plan,
    }
    if estimator is not None:
        row["estimator"] = estimator
    row.update({
        "persona": persona,
        "generation_config": generation_config,
        "prompt": list(prompt),
        "option_order": list(option_order),
        "raw_text": raw_text,
        "status": Status(status).value,
    })
    if estimator is not None:
        row["distribution"] = None if distribution is None else list(distribution)
    row.update({
        "positions": list(positions),
        "option_indices": list(option_indices),
        "parsed": list(parsed),
        "parse_method": parse_method,
        "ai_disclosure": ai_disclosure,
        "tokens": {"input": input_tokens, "output": output_tokens},
        "attempts": attempts,
        "error": error,
    })
    if estimator is None:
        row["empty_completion"] = empty_completion
    row["timing"] = {"latency_s": round(latency_s, 4), "finished_at": now()}
    return row
