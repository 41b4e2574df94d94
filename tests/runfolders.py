"""Hand-written run folders for scoring tests: rows and a config as the runner writes them.

Why a module: the scoring and score-summary tests build the same folders; one copy keeps their
shape in step with the runner's, and it writes through ``culturesim.simulator.runfolder`` like the
runner does.
"""

from __future__ import annotations

from pathlib import Path

from culturesim.simulator.questions import Question
from culturesim.simulator.runfolder import Status, write_config, write_questions, write_rows


def make_row(pid: int, q: Question, status: str, indices: list[int]) -> dict:
    return {"key": f"{pid}:{q.id}", "participant_id": pid, "question_id": q.id, "status": Status(status).value,
            "option_indices": indices, "parsed": [q.option_codes[i] for i in indices], "raw_text": "",
            "tokens": {"input": 1, "output": 1}}


def write_run(folder: Path, questions: list[Question], rows: list[dict], participants: int) -> Path:
    folder.mkdir(parents=True)
    config = {"model": "hand-written", "backend": {"backend": "none"}, "plan": "all", "culture": questions[0].culture,
              "languages": ["en"], "participants": participants, "participant_ids": list(range(participants)),
              "seed": 0, "question_ids": [q.id for q in questions], "prompt_version": "1.0"}
    write_questions(folder, questions)
    write_rows(folder, rows)
    write_config(folder, config)
    return folder
