"""Running a job: rows as they arrive, a timeout, cancellation, one line per failure."""

from __future__ import annotations

import contextvars
import logging
import os
import queue
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from simulator.questions import Question
from space.common import EMBEDDED_MODEL
from space.limits import Hardware, SpaceLimits, check_job, check_model_size
from space.spec import JobSpec, select_questions
from space.models import JobCancelled, JobTimeout, _GuardedBackend, _claude_backend, local_backend, redact

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# Running a job, with rows as they arrive
# --------------------------------------------------------------------------------------


@dataclass
class JobUpdate:
    """What a running job has to show: rows so far and a one-line status."""

    rows: list[dict[str, Any]]
    done: int
    total: int
    message: str
    run_dir: Path
    finished: bool = False
    elapsed_s: float = 0.0
    questions: list[Question] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        return responses_table(self.rows, self.questions)


RESPONSE_COLUMNS = ["participant", "question", "answer", "status", "location", "generation", "raw text"]


def _location(persona: Any) -> str:
    location = persona.get("location") if isinstance(persona, dict) else None
    if isinstance(location, dict):
        return ", ".join(str(location[k]) for k in ("region", "city") if location.get(k))
    return "" if location is None else str(location)


def _generation(config: Any) -> str:
    if not isinstance(config, dict):
        return ""
    parts = []
    if config.get("temperature") is not None:
        parts.append(f"T {config['temperature']:.2f}")
    if config.get("top_p") is not None:
        parts.append(f"top_p {config['top_p']:.2f}")
    if config.get("num_beams", 1) != 1:
        parts.append(f"beams {config['num_beams']}")
    if config.get("do_sample") is False:
        parts.append("greedy")
    return ", ".join(parts)


def responses_table(rows: Sequence[dict[str, Any]], questions: Sequence[Question] | None = None,
                    max_text: int = 160) -> pd.DataFrame:
    """The rows of a run as the page shows them: who (location, generation settings), which
    question, which answer (code and text when the questions are given), status, raw text."""
    options = {q.id: (q.option_codes, q.options) for q in questions or ()}
    records = []
    for r in rows:
        codes, texts = options.get(r.get("question_id"), ((), ()))
        answer = []
        for code in r.get("parsed") or []:
            text = texts[codes.index(code)] if code in codes else ""
            answer.append(f"{code} {text}".strip())
        raw = " ".join(str(r.get("raw_text") or "").split())
        if not raw and r.get("error"):
            raw = f"[backend error] {r['error']}"
        records.append({
            "participant": r.get("participant_id"),
            "question": r.get("question_id"),
            "answer": "; ".join(answer),
            "status": r.get("status"),
            "location": _location(r.get("persona")),
            "generation": _generation(r.get("generation_config")),
            "raw text": raw[:max_text] + ("…" if len(raw) > max_text else ""),
        })
    return pd.DataFrame.from_records(records, columns=RESPONSE_COLUMNS)


def run_job(
    spec: JobSpec,
    runs_dir: str | Path,
    limits: SpaceLimits,
    hardware: Hardware,
    api_key: str | None = None,
    dataset_dir: str | Path | None = None,
    poll_s: float = 0.5,
    stop: threading.Event | None = None,
) -> Iterator[JobUpdate]:
    """Run one simulation into a fresh folder under ``runs_dir``, yielding updates as rows arrive.

    The runner works in a thread (started in a copy of this context, so a progress tracker
    that follows tqdm, such as Gradio's, sees its bar); this generator relays its rows. A job
    that passes ``limits.job_timeout_s`` raises :class:`JobTimeout`; any error raised has the
    key removed from its message.
    """
    from simulator.participants import PlanSettings
    from simulator.runner import simulate

    started = time.monotonic()
    stop = stop or threading.Event()
    api_key = (api_key or "").strip() or None
    check_job(spec, limits)
    questions = select_questions(spec, dataset_dir)
    if spec.model_kind == "claude" and not api_key:
        raise ValueError("Paste an Anthropic API key to run Claude (it is used for this job only and not stored).")
    if spec.model_kind == "hub":
        check_model_size(spec.model_id, hardware, limits)
    run_dir = Path(runs_dir) / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    run_dir.mkdir(parents=True, exist_ok=False)
    total = len(questions) * spec.participants
    settings = PlanSettings(max_beams=spec.max_beams, max_memory=spec.max_memory,
                            temperature_range=tuple(spec.temperature_range), top_p_range=tuple(spec.top_p_range))
    yield JobUpdate([], 0, total, f"Loading {spec.model_id} …", run_dir, questions=questions)
    if spec.model_kind == "claude":
        inner = _claude_backend(spec.model_id, api_key or "")
    elif spec.model_kind == "hub":
        try:
            inner = local_backend(spec.model_id)
        except (OSError, ValueError, ModuleNotFoundError) as exc:
            raise ValueError(f"Could not load the Hub model {spec.model_id!r} ({type(exc).__name__}: {exc})") from exc
    else:
        inner = local_backend(EMBEDDED_MODEL)
    deadline = started + limits.job_timeout_s
    backend = _GuardedBackend(inner, deadline, limits.job_timeout_s, stop, api_key)
    arrived: queue.Queue[list[dict[str, Any]]] = queue.Queue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["summary"] = simulate(
                run_dir, questions, backend, plan=spec.plan, participants=spec.participants, seed=spec.seed,
                settings=settings, max_new_tokens=spec.max_new_tokens, progress=True,
                on_rows=lambda rows: arrived.put([dict(r) for r in rows]),
                selection={"culture": spec.culture, "language": spec.language, "limit": spec.questions,
                           "select_by": spec.select_by, "selection": list(spec.selection), "source": "space"},
            )
        except BaseException as exc:  # noqa: BLE001 - relayed to the generator below
            outcome["error"] = exc

    yield JobUpdate([], 0, total, f"Asking {len(questions)} questions of {spec.participants} participants …", run_dir,
                    elapsed_s=time.monotonic() - started, questions=questions)
    # A copy of this context: a progress tracker that follows tqdm (Gradio's) sees the runner's bar.
    worker = threading.Thread(target=contextvars.copy_context().run, args=(work,), name=f"job-{run_dir.name}",
                              daemon=True)
    worker.start()
    rows: list[dict[str, Any]] = []
    try:
        while True:
            worker.join(timeout=poll_s)
            fresh: list[dict[str, Any]] = []
            while not arrived.empty():
                fresh += arrived.get_nowait()
            if fresh:
                rows += fresh
                yield JobUpdate(list(rows), len(rows), total, f"{len(rows)} of {total} responses",
                                run_dir, elapsed_s=time.monotonic() - started, questions=questions)
            if not worker.is_alive():
                break
            if time.monotonic() > deadline:
                stop.set()  # the guarded backend stops the runner before its next batch
    finally:
        stop.set()  # also when the page is closed (GeneratorExit): the worker stops at its next batch
        if spec.model_kind == "claude":
            worker.join(timeout=10)
            inner.close()
    if "error" in outcome:
        error = outcome["error"]
        if isinstance(error, JobCancelled) and time.monotonic() > deadline:
            raise JobTimeout(f"the job ran past this Space's limit of {limits.job_timeout_s:.0f} s") from None
        raise error
    summary = outcome["summary"]
    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.status_counts.items()))
    message = f"{summary.rows_total} responses in {summary.elapsed_s:.1f} s ({counts})"
    errors = [r["error"] for r in rows if r.get("status") == "error" and r.get("error")]
    if errors:
        message += f"; the backend failed on {len(errors)}, e.g. {redact(errors[0], api_key)[:300]}"
    yield JobUpdate(list(rows), len(rows), total, message,
                    run_dir, finished=True, elapsed_s=time.monotonic() - started, questions=questions)


def user_message(exc: BaseException) -> str:
    """The text a failed job shows: the error's own message, plus what to do for timeouts."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, JobTimeout):
        return (f"Stopped: {text}. Ask fewer questions or participants, or lower max_new_tokens; the responses so "
                "far are kept in the run folder.")
    if isinstance(exc, (ValueError, FileNotFoundError)):
        return text
    return f"{type(exc).__name__}: {text}"


def default_runs_dir() -> Path:
    """Where the Space writes run folders: $CULTURESIM_SPACE_RUNS or a folder in the temp dir."""
    path = Path(os.environ.get("CULTURESIM_SPACE_RUNS") or Path(tempfile.gettempdir()) / "culturesim-space-runs")
    path.mkdir(parents=True, exist_ok=True)
    return path
