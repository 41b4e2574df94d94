"""Reference answers written as run folders, so the one scorer scores them like a model's run.

Why: a model's score means something only beside what no model, or a real sample of people,
would score on the same questions with the same metric. Four references:

- ``uniform``: every option equally likely (the probabilities themselves, one row per question:
  a distribution run, read like ``logprob`` runs);
- ``modal``: ``participants`` simulated participants who all give the human modal answer;
- ``humans-N`` (e.g. ``humans-20``, ``humans-100``): N real respondents. From the culture's
  respondents config (``<culture>_respondents``: one row per respondent, one nullable int column
  per item id holding the 0-based option index) when it exists and covers every question,
  drawn without replacement with probability proportional to the survey weight; a respondent
  without an answer to an item gives a ``no_answer`` row. Otherwise (no microdata for the
  culture) each question's N answers are multinomial draws from its human distribution, and
  the run's ``reference.source`` and the results row say so.

Each is written in one go through ``culturesim.simulator.runfolder`` (questions, rows, then
``config.json`` last): a folder with a config is finished; one without is written again.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from culturesim.simulator import __version__
from culturesim.dataset_builder.respondents import respondents_files
from culturesim.simulator.questions import DEFAULT_DATASET_DIR, Question, config_files
from culturesim.simulator.runfolder import (
    CONFIG_FILE,
    RUN_FORMAT,
    Status,
    now,
    recorded_command,
    response_row,
    version_fields,
    write_config,
    write_questions,
    write_rows,
)

__all__ = ["REFERENCES_VERSION", "check_reference", "respondents_table", "write_reference"]

REFERENCES_VERSION = "1.0"
"""Changes when a reference's answers would change for the same questions and seed."""

_HUMANS = re.compile(r"humans-(\d+)$")


def check_reference(name: str) -> int | None:
    """Validate a reference name (``uniform``, ``modal`` or ``humans-N``); return N for a human sample."""
    if name in ("uniform", "modal"):
        return None
    match = _HUMANS.match(name)
    if match and int(match.group(1)) >= 1:
        return int(match.group(1))
    raise ValueError(f"Unknown reference {name!r}; choose uniform, modal or humans-N (N real respondents, e.g. "
                     "humans-20)")


def respondents_table(culture: str, dataset_dir: str | Path | None = None) -> list[dict[str, Any]] | None:
    """The rows of the culture's respondents config (``<culture>_respondents``), or None without one."""
    path = respondents_files(dataset_dir or DEFAULT_DATASET_DIR).get(f"{culture}_respondents")
    return pq.read_table(path).to_pylist() if path is not None else None


def _weighted_sample(rows: list[dict[str, Any]], n: int, rng: random.Random) -> list[dict[str, Any]]:
    """``n`` rows without replacement, each draw proportional to the survey weight (Efraimidis-Spirakis keys)."""
    keyed = []
    for row in rows:
        weight = float(row.get("weight") or 0.0)
        if weight > 0:
            keyed.append((rng.random() ** (1.0 / weight), row))
    if len(keyed) < n:
        raise ValueError(f"humans-{n}: the respondents config has only {len(keyed)} respondents with a positive "
                         f"weight; ask for at most humans-{len(keyed)}")
    keyed.sort(key=lambda kr: kr[0], reverse=True)
    return [row for _, row in keyed[:n]]


def _row(participant: int, step: int, q: Question, plan: str, persona: dict[str, Any], index: int | None,
         distribution: Sequence[float] | None = None) -> dict[str, Any]:
    ok = index is not None or distribution is not None
    return response_row(
        participant_id=participant, question_id=q.id, step=step, parallel_id=q.parallel_id or None, plan=plan,
        persona=persona, generation_config=None, prompt=[], option_order=list(range(q.num_options)), raw_text="",
        status=Status.OK if ok else Status.NO_ANSWER,
        positions=[index] if index is not None else [], option_indices=[index] if index is not None else [],
        parsed=[q.option_codes[index]] if index is not None else [], parse_method="reference", ai_disclosure=False,
        input_tokens=0, output_tokens=0, attempts=0, error=None, latency_s=0.0,
        estimator="reference" if distribution is not None else None, distribution=distribution,
    )


def write_reference(out: str | Path, questions: Sequence[Question], name: str, participants: int = 10, seed: int = 0,
                    dataset_dir: str | Path | None = None, selection: dict[str, Any] | None = None) -> Path:
    """Write reference ``name`` for ``questions`` into the run folder ``out`` (kept when finished).

    ``participants``: how many simulated participants the ``modal`` reference has (the study's
    count, so it is scored at the models' sample size)."""
    out = Path(out)
    n = check_reference(name)
    if not questions:
        raise ValueError(f"reference {name}: no questions given")
    if (out / CONFIG_FILE).is_file():
        return out
    culture = questions[0].culture
    rows: list[dict[str, Any]] = []
    estimator = None
    if name == "uniform":
        size, source = 1, "exact: every option has probability 1/k"
        estimator = {"name": "reference", "version": REFERENCES_VERSION}
        rows = [_row(0, s, q, name, {"reference": name}, None, [1.0 / q.num_options] * q.num_options)
                for s, q in enumerate(questions)]
    elif name == "modal":
        size, source = participants, "every participant gives the option most real respondents chose"
        for p in range(size):
            rows += [_row(p, s, q, name, {"reference": name},
                          max(range(q.num_options), key=lambda i: q.human_distribution[i]))
                     for s, q in enumerate(questions)]
    else:
        size = int(n or 0)
        table = respondents_table(culture, dataset_dir)
        covered = table is not None and table and all(q.id in table[0] for q in questions)
        if covered:
            source = f"{size} real respondents of the {culture}_respondents microdata, drawn by survey weight"
            people = _weighted_sample(table, size, random.Random(f"{seed}:{name}:{culture}"))
            for p, person in enumerate(people):
                persona = {"reference": name, "respondent_id": person.get("respondent_id")}
                for s, q in enumerate(questions):
                    value = person.get(q.id)
                    index = int(value) if value is not None and 0 <= int(value) < q.num_options else None
                    rows.append(_row(p, s, q, name, persona, index))
        else:
            source = (f"multinomial draws of {size} answers per question from the human distribution (no respondents "
                      f"config covering these questions for {culture})")
            draws = {}
            for q in questions:
                rng = random.Random(f"{seed}:{name}:{q.id}")
                draws[q.id] = rng.choices(range(q.num_options), weights=q.human_distribution, k=size)
            for p in range(size):
                rows += [_row(p, s, q, name, {"reference": name}, draws[q.id][p]) for s, q in enumerate(questions)]
    config: dict[str, Any] = {
        "format": RUN_FORMAT,
        **version_fields({"culturesim": __version__, "references": REFERENCES_VERSION}),
        "model": f"reference:{name}",
        "backend": {"backend": "none"},
        "plan": name,
        "plan_kind": "reference",
        "modifications": [],
        "seed": seed,
        "participants": size,
        "shard": None,
        "participant_ids": list(range(size)),
        "max_new_tokens": 0,
        "culture": culture,
        "languages": sorted({q.language for q in questions}),
        "question_selection": selection or {},
        "question_ids": [q.id for q in questions],
        "reference": {"kind": name, "n": size, "source": source,
                      "description": f"{name}: {source}"},
        "created_at": now(),
        "command": recorded_command(),
    }
    if estimator is not None:
        config["estimator"] = estimator
    out.mkdir(parents=True, exist_ok=True)
    write_questions(out, questions)
    write_rows(out, rows)
    write_config(out, config)
    return out
