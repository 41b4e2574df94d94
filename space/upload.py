"""The Score tab: check an uploaded ``responses.jsonl`` and turn it into a run folder.

The folder is written through ``culturesim.simulator.runfolder`` like a simulated run's, so the
scorer reads it the same way: in particular the versions of the uploaded ``config.json`` land in
the flat ``*_version`` keys the scores report.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culturesim.simulator.questions import Question
from culturesim.simulator.runfolder import (
    RUN_FORMAT,
    Status,
    recorded_versions,
    version_fields,
    write_config,
    write_questions,
    write_rows,
)
from culturesim.space.explore import dataset_frame
from culturesim.space.results import JobResult, score_folder

log = logging.getLogger(__name__)


def score_upload(files: Sequence[Any] | None, work_dir: str | Path, dataset_dir: str | Path | None = None) -> JobResult:
    """Score uploaded files: one ``*.jsonl`` (the responses) and optionally one ``config.json``."""
    paths = [Path(getattr(f, "name", f)) for f in (files or [])]
    if not paths:
        raise ValueError("Upload a responses.jsonl first (optionally with its config.json).")
    jsonl = [p for p in paths if p.suffix == ".jsonl"]
    configs = [p for p in paths if p.suffix == ".json"]
    if len(jsonl) != 1:
        raise ValueError(f"Upload exactly one .jsonl file (the run's responses.jsonl); got {[p.name for p in jsonl]}")
    if len(configs) > 1:
        raise ValueError(f"Upload at most one config.json; got {[p.name for p in configs]}")
    run_dir = prepare_uploaded_run(jsonl[0], work_dir, dataset_dir, configs[0] if configs else None)
    return score_folder(run_dir, dataset_dir=dataset_dir)


# --------------------------------------------------------------------------------------
# Score tab: responses.jsonl from elsewhere
# --------------------------------------------------------------------------------------


def read_responses_upload(path: str | Path, known_questions: dict[str, Question] | None = None,
                          max_rows: int = 200_000) -> list[dict[str, Any]]:
    """The rows of an uploaded ``responses.jsonl``, each checked; a bad one is refused with
    its line number and what is wrong with it."""
    path = Path(path)
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[int, str], int] = {}
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(
                    f"line {number}: not UTF-8 text; a responses.jsonl is UTF-8 JSON, one row per line") from None
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"line {number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(row, dict):
                raise ValueError(f"line {number}: a row must be a JSON object, got {type(row).__name__}")
            missing = [k for k in ("participant_id", "question_id", "status", "option_indices") if k not in row]
            if missing:
                raise ValueError(f"line {number}: missing field(s) {', '.join(missing)} (rows come from "
                                 "`culturesim simulate`: participant_id, question_id, status, option_indices)")
            pid, qid, status, indices = row["participant_id"], row["question_id"], row["status"], row["option_indices"]
            if not isinstance(pid, int) or isinstance(pid, bool) or pid < 0:
                raise ValueError(f"line {number}: participant_id {pid!r} must be a whole number >= 0")
            if not isinstance(qid, str) or not qid:
                raise ValueError(f"line {number}: question_id {qid!r} must be a non-empty string")
            if status not in {s.value for s in Status}:
                raise ValueError(f"line {number}: status {status!r} is not one of {', '.join(s.value for s in Status)}")
            if not isinstance(indices, list) or any(not isinstance(i, int) or isinstance(i, bool) for i in indices):
                raise ValueError(f"line {number}: option_indices {indices!r} must be a list of whole numbers")
            if known_questions is not None:
                q = known_questions.get(qid)
                if q is None:
                    raise ValueError(f"line {number}: question_id {qid!r} is not in the dataset")
                if status == Status.OK:
                    bad = [i for i in indices if not 0 <= i < q.num_options]
                    if not indices or bad:
                        raise ValueError(f"line {number}: option_indices {indices} do not fit {qid!r}, which has "
                                         f"{q.num_options} options (0-based indices 0..{q.num_options - 1})")
                    if len(indices) > 1 and q.question_type != "multiple_choice":
                        raise ValueError(f"line {number}: {len(indices)} options for single-choice question {qid!r}")
            if (pid, qid) in seen:
                raise ValueError(
                    f"line {number}: participant {pid} already answered {qid!r} on line {seen[(pid, qid)]}")
            seen[(pid, qid)] = number
            rows.append(row)
            if len(rows) > max_rows:
                raise ValueError(f"line {number}: more than {max_rows} rows; score big runs with `culturesim score`")
    if not rows:
        raise ValueError(f"{path.name} has no rows; upload the responses.jsonl a run wrote")
    return rows


def prepare_uploaded_run(
    responses_path: str | Path,
    work_dir: str | Path,
    dataset_dir: str | Path | None = None,
    config_path: str | Path | None = None,
) -> Path:
    """A run folder for an uploaded ``responses.jsonl`` (and optionally its ``config.json``),
    with the questions it answers taken from the dataset, ready for ``score_folder``."""
    frame = dataset_frame(dataset_dir)
    # pandas holds a missing number as NaN; the dataset record (and the metric) means None
    records = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
               for r in frame.to_dict("records")]
    known = {r["id"]: Question.from_record(r) for r in records}
    rows = read_responses_upload(responses_path, known)
    qids = list(dict.fromkeys(r["question_id"] for r in rows))
    questions = [known[q] for q in qids]
    cultures = sorted({q.culture for q in questions})
    if len(cultures) != 1:
        raise ValueError(
            f"The rows answer questions of several cultures ({', '.join(cultures)}); upload one run at a time")
    config: dict[str, Any] = {}
    if config_path:
        try:
            config = json.loads(Path(config_path).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"config.json is not valid JSON ({exc})") from None
        if not isinstance(config, dict):
            raise ValueError("config.json must hold a JSON object (the one `culturesim simulate` writes)")
    run = Path(work_dir) / f"upload-{uuid.uuid4().hex[:8]}"
    run.mkdir(parents=True)
    plans = sorted({str(r.get("plan")) for r in rows if r.get("plan")})
    config = {
        "format": RUN_FORMAT,
        **version_fields(recorded_versions(config)),  # as the runner writes them: scoring reads these keys
        "model": config.get("model") or "uploaded responses",
        "backend": config.get("backend") or {"backend": "uploaded"},
        "plan": config.get("plan") or (plans[0] if len(plans) == 1 else "unknown"),
        "seed": config.get("seed"),
        "participants": len({r["participant_id"] for r in rows}),
        "created_at": config.get("created_at"),
        "culture": cultures[0],
        "languages": sorted({q.language for q in questions}),
        "question_ids": qids,
        "participant_ids": sorted({r["participant_id"] for r in rows}),
        "question_selection": {"source": "uploaded to the Space"},
    }
    # questions and rows first, config.json last, as a simulated run's set-up
    write_questions(run, questions)
    write_rows(run, rows)
    write_config(run, config)
    return run
