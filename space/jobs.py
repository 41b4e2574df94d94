"""Running a job: rows as they arrive, a timeout, cancellation, one line per failure."""

from __future__ import annotations

import ast
import contextvars
import logging
import os
import re
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from culturesim.simulator.questions import Question
from culturesim.simulator.runfolder import RESPONSES_FILE, RowTail, read_config
from culturesim.space.common import EMBEDDED_MODEL
from culturesim.space.limits import Hardware, SpaceLimits, check_job, check_model_size
from culturesim.space.spec import JobSpec, select_questions
from culturesim.space.device import STOP_FILE, simulate_local
from culturesim.space.models import (GuardedBackend, JobCancelled, JobFailed, JobTimeout, claude_backend, is_loaded,
                          local_backend, redact)
from culturesim.simulator.participants import PlanSettings
from culturesim.simulator.runner import simulate


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


RESPONSE_COLUMNS = ["participant", "question", "answer", "status", "raw text", "location", "generation", "question id"]


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


def responses_table(rows: Sequence[dict[str, Any]], questions: Sequence[Question] | None = None) -> pd.DataFrame:
    """The rows of a run as the page shows them: who (location, generation settings), which
    question (its text when the questions are given), which answer (code and option text),
    status, and the model's whole reply (the page wraps it; nothing is cut)."""
    known = {q.id: q for q in questions or ()}
    records = []
    for r in rows:
        q = known.get(r.get("question_id"))
        codes, texts = (q.option_codes, q.options) if q else ((), ())
        answer = []
        for code in r.get("parsed") or []:
            text = texts[codes.index(code)] if code in codes else ""
            answer.append(f"{code} {text}".strip())
        raw = str(r.get("raw_text") or "").strip()
        if not raw and r.get("error"):
            raw = f"[backend error] {r['error']}"
        records.append({
            "participant": r.get("participant_id"),
            "question": q.question if q else r.get("question_id"),
            "answer": "; ".join(answer),
            "status": r.get("status"),
            "raw text": raw,
            "location": _location(r.get("persona")),
            "generation": _generation(r.get("generation_config")),
            "question id": r.get("question_id"),
        })
    return pd.DataFrame.from_records(records, columns=RESPONSE_COLUMNS)


class GenerationSlots:
    """First come, first served turns on the local model.

    Why not Gradio's ``concurrency_limit`` alone: a job first loads (or downloads) its model
    and only then needs the model's turn, and a Claude job needs no turn at all; with one
    Gradio slot both would wait behind the job generating. Jobs wait here in arrival order and
    are told how many are ahead of them.
    """

    def __init__(self, slots: int = 1) -> None:
        if slots < 1:
            raise ValueError(f"slots={slots!r} must be >= 1")
        self._slots, self._running = slots, 0
        self._waiting: list[object] = []
        self._cond = threading.Condition()

    def wait(self, cancel: threading.Event, poll_s: float = 0.5) -> Iterator[int]:
        """Yield the number of jobs ahead (running or waiting) until this job holds a turn;
        the caller must :meth:`release` it. Raises :class:`JobCancelled` when ``cancel`` is set."""
        ticket = object()
        with self._cond:
            self._waiting.append(ticket)
        try:
            while True:
                with self._cond:
                    if self._waiting[0] is ticket and self._running < self._slots:
                        self._waiting.pop(0)
                        self._running += 1
                        return
                    ahead = self._waiting.index(ticket) + self._running
                yield ahead
                if cancel.is_set():
                    raise JobCancelled("the job was cancelled while waiting for its turn")
                with self._cond:
                    self._cond.wait(timeout=poll_s)
        except BaseException:
            with self._cond:
                if ticket in self._waiting:
                    self._waiting.remove(ticket)
                self._cond.notify_all()
            raise

    def release(self) -> None:
        with self._cond:
            self._running = max(0, self._running - 1)
            self._cond.notify_all()


def _wait_for_load(model_id: str, deadline: float, cancel: threading.Event, limits: SpaceLimits, poll_s: float,
                   update: Callable[[str], JobUpdate]) -> Iterator[JobUpdate]:
    """Load (download if need be) ``model_id`` in a background thread, reporting while it runs.

    The load counts against the job's time limit but holds no generation turn. A load that
    outlives the limit goes on in the background (the next job finds the model loaded).
    """
    box: dict[str, Any] = {}

    def load() -> None:
        try:
            box["backend"] = local_backend(model_id)
        except BaseException as exc:  # noqa: BLE001 - relayed below
            box["error"] = exc

    thread = threading.Thread(target=load, name=f"load-{model_id}", daemon=True)
    thread.start()
    started = time.time()
    while True:
        thread.join(timeout=poll_s)
        if not thread.is_alive():
            break
        if cancel.is_set():
            raise JobCancelled("the job was cancelled while its model was loading")
        if time.time() > deadline:
            raise JobTimeout(f"downloading and loading {model_id} took longer than this Space's limit of "
                             f"{limits.job_timeout_s:.0f} s; it goes on loading in the background, so run again "
                             "in a minute")
        yield update(f"Downloading and loading {model_id} … {time.time() - started:.0f} s")
    if "error" in box:
        exc = box["error"]
        if model_id == EMBEDDED_MODEL or not isinstance(exc, (OSError, ValueError, ModuleNotFoundError)):
            raise exc
        raise ValueError(f"Could not load the Hub model {model_id!r} ({type(exc).__name__}: {exc})") from exc


_SDK_ERROR = re.compile(r"(?:\s*\(HTTP \d+\))?:?\s*Error code: (\d+) - (\{.*\})", re.DOTALL)
_ENV_KEY_FIX = re.compile(r"check the API key in \$\w+ \(keys are read from the environment only\)")


def plain_error(text: str) -> str:
    """A backend error as a sentence: an SDK's ``Error code: 401 - {'type': 'error', 'error': {...}}``
    becomes ``(HTTP 401): <its message>`` (the page shows no raw dict); the rest is kept."""
    match = _SDK_ERROR.search(text)
    if not match:
        return text
    try:
        body = ast.literal_eval(match.group(2))
    except (ValueError, SyntaxError):
        return text
    inner = body.get("error") if isinstance(body, dict) else None
    message = inner.get("message") if isinstance(inner, dict) else body.get("message") if isinstance(body, dict) else None
    if not message:
        return text
    return f"{text[:match.start()]} (HTTP {match.group(1)}): {message}{text[match.end():]}".lstrip()


def _space_error(error: BaseException, api_key: str | None) -> str:
    """A backend's own error as the Space says it: redacted, no raw dict, and the fix a visitor
    can apply (the key is pasted here, not read from the environment)."""
    text = plain_error(redact(str(error) or type(error).__name__, api_key))
    text = _ENV_KEY_FIX.sub("check the Anthropic API key you pasted", text)
    return text.replace("start the server, or fix --base-url", "the API could not be reached from this Space; try again later")


def _failure(rows: Sequence[dict[str, Any]], api_key: str | None) -> str | None:
    """Why a finished job has nothing to score (no row answered), or None when some row did."""
    if any(r.get("status") == "ok" for r in rows):
        return None
    if not rows:
        return "no response was written"
    counts = Counter(str(r.get("status")) for r in rows)
    breakdown = ", ".join(f"{n} {status}" for status, n in counts.most_common())
    errors = [r["error"] for r in rows if r.get("status") == "error" and r.get("error")]
    if errors:
        return f"every one of the {len(rows)} requests failed ({breakdown}); the backend said: " + \
            _space_error(RuntimeError(errors[0]), api_key)[:300]
    return (f"none of the {len(rows)} replies held an answer that maps to an option ({breakdown}); see the raw text "
            "in the responses table, and try more max_new_tokens or a bigger model")


def run_job(
    spec: JobSpec,
    runs_dir: str | Path,
    limits: SpaceLimits,
    hardware: Hardware,
    api_key: str | None = None,
    dataset_dir: str | Path | None = None,
    poll_s: float = 0.5,
    cancel: threading.Event | None = None,
    slots: GenerationSlots | None = None,
) -> Iterator[JobUpdate]:
    """Run one simulation into a fresh folder under ``runs_dir``, yielding updates as rows arrive.

    Steps: check the job; load the model (local kinds; outside the generation turn, inside
    the time limit); wait for a turn on the local model (``slots``; Claude jobs take none);
    generate in a worker thread (local models through ``culturesim.space.device.simulate_local``, the
    ZeroGPU-decorated call; started in a copy of this context so Gradio's tqdm tracker sees
    the runner's bar) while the rows are read back from the run folder. Time waiting for a
    turn does not count against ``limits.job_timeout_s``. Raises :class:`JobTimeout`,
    :class:`JobCancelled` (``cancel`` set) or :class:`JobFailed` (no row answered); every
    message has the key removed.
    """

    started = time.time()
    cancel = cancel or threading.Event()
    slots = slots or GenerationSlots(limits.concurrency_limit)
    api_key = (api_key or "").strip() or None
    check_job(spec, limits)
    questions = select_questions(spec, dataset_dir)
    if spec.model_kind == "claude" and not api_key:
        raise ValueError("Paste an Anthropic API key to run Claude (it is used for this job only and not stored).")
    if spec.model_kind == "hub":
        check_model_size(spec.model_id, hardware, limits)
    run_dir = Path(runs_dir) / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    run_dir.mkdir(parents=True, exist_ok=False)
    stop_path = run_dir / STOP_FILE
    total = len(questions) * spec.participants
    deadline = started + limits.job_timeout_s

    def update(message: str, rows: list[dict[str, Any]] | None = None, finished: bool = False) -> JobUpdate:
        rows = list(rows or [])
        return JobUpdate(rows, len(rows), total, message, run_dir, finished=finished,
                         elapsed_s=time.time() - started, questions=questions)

    local = spec.model_kind != "claude"
    model_id = spec.model_id if spec.model_kind == "hub" else EMBEDDED_MODEL
    if local and not is_loaded(model_id):
        if hardware.zero_gpu:  # the main process has no CUDA there: the model loads inside the GPU lease
            yield update(f"{model_id} is not loaded yet: it loads inside the GPU lease, which takes longer")
        else:
            yield update(f"Loading {model_id} …")
            yield from _wait_for_load(model_id, deadline, cancel, limits, poll_s, update)
    held = False
    if local:
        waited_from = time.time()
        for ahead in slots.wait(cancel, poll_s):
            yield update(f"Waiting for the model: {ahead} job{'s' if ahead != 1 else ''} ahead of yours")
        held = True
        deadline += time.time() - waited_from  # the wait is not the job's time
    settings = PlanSettings(max_beams=spec.max_beams, max_memory=spec.max_memory,
                            temperature_range=tuple(spec.temperature_range), top_p_range=tuple(spec.top_p_range))
    options = dict(plan=spec.plan, participants=spec.participants, seed=spec.seed, settings=settings,
                   max_new_tokens=spec.max_new_tokens, progress=True,
                   selection={"culture": spec.culture, "language": spec.language, "limit": spec.questions,
                              "select_by": spec.select_by, "selection": list(spec.selection), "source": "space"})
    outcome: dict[str, Any] = {}
    inner = claude_backend(spec.model_id, api_key or "") if not local else None

    def work() -> None:
        try:
            if local:
                outcome["summary"] = simulate_local(
                    run_dir=str(run_dir), model_id=model_id, questions=questions, options=options,
                    deadline=deadline, timeout_s=limits.job_timeout_s, lease_s=deadline - time.time())
            else:
                backend = GuardedBackend(inner, deadline, limits.job_timeout_s, stop_path, api_key)
                outcome["summary"] = simulate(run_dir, questions, backend, **options)
        except BaseException as exc:  # noqa: BLE001 - relayed to the generator below
            outcome["error"] = exc

    yield update(f"Asking {len(questions)} questions of {spec.participants} participants …")
    worker = threading.Thread(target=contextvars.copy_context().run, args=(work,), name=f"job-{run_dir.name}",
                              daemon=True)
    worker.start()
    rows: list[dict[str, Any]] = []
    tail = RowTail(run_dir / RESPONSES_FILE)
    try:
        while True:
            worker.join(timeout=poll_s)
            fresh = tail.read()
            if fresh:
                rows += fresh
                yield update(f"{len(rows)} of {total} responses", rows)
            if not worker.is_alive():
                break
            if cancel.is_set() or time.time() > deadline:
                stop_path.touch()  # the guarded backend stops the runner before its next batch
    finally:
        stop_path.touch()  # also when the page is closed (GeneratorExit): the worker stops at its next batch
        if held:
            if worker.is_alive():  # a stopped job finishes its batch before the next job's turn
                worker.join(timeout=limits.job_timeout_s)
            slots.release()
        if inner is not None:
            worker.join(timeout=10)
            inner.close()
    rows += tail.read()
    if "error" in outcome:
        error = outcome["error"]
        if cancel.is_set():
            raise JobCancelled(f"stopped after {len(rows)} of {total} responses (they stay in the table and the run folder)") from None
        if isinstance(error, (JobCancelled, JobTimeout)) or time.time() > deadline:
            raise JobTimeout(f"the job ran past this Space's limit of {limits.job_timeout_s:.0f} s") from None
        if type(error).__name__ == "BackendUnavailable":  # the backend refused the first requests: nothing answered
            lost = variation_note(run_dir)
            raise JobFailed(f"no request got an answer: {_space_error(error, api_key)}" + (f". {lost}" if lost else ""))
        raise error
    summary = outcome["summary"]
    lost = variation_note(run_dir)
    reason = _failure(rows, api_key)
    if reason:
        raise JobFailed(reason + (f". {lost}" if lost else ""))
    counts = ", ".join(f"{v} {k}" for k, v in sorted(summary.status_counts.items(), key=lambda kv: -kv[1]))
    message = f"{summary.rows_total} responses in {summary.elapsed_s:.1f} s ({counts})"
    errors = [r["error"] for r in rows if r.get("status") == "error" and r.get("error")]
    if errors:
        message += f"; the backend failed on {len(errors)}, e.g. {plain_error(redact(errors[0], api_key))[:300]}"
    if lost:
        message += f" · ⚠️ {lost}"
    yield update(message, rows, finished=True)


def variation_note(run_dir: str | Path) -> str:
    """What a run's backend could not vary of the DEF generation settings (Claude: num_beams), from
    its ``config.json`` (the runner records it; the log alone is not enough), or ""."""
    try:
        config = read_config(run_dir)
    except (OSError, ValueError):
        return ""
    diversity = config.get("config_diversity") or {}
    if not (diversity.get("modification_on") and diversity.get("unavailable")):
        return ""
    return (f"Generation-settings variation lost: {config.get('model') or 'this backend'} cannot apply "
            f"{', '.join(diversity['unavailable'])}, so the participants do not differ in those (each request used "
            "the backend's default) and the plan's config part is only partly applied")


def user_message(exc: BaseException, *paths: str | Path | None) -> str:
    """The text a failed job shows: the error's own message, plus what to do; no server path
    (each of ``paths``, e.g. the runs folder, is replaced by "…")."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, JobTimeout):
        text = (f"Stopped: {text}. Ask fewer questions or participants, or lower max_new_tokens; the responses so "
                "far are in the table.")
    elif isinstance(exc, JobCancelled):
        text = f"Cancelled: {text}."
    elif isinstance(exc, JobFailed):
        text = f"Failed: {text}."
    elif not isinstance(exc, (ValueError, FileNotFoundError)):
        text = f"{type(exc).__name__}: {text}"
    for path in paths:
        if path:
            text = text.replace(str(Path(path).resolve()), "…").replace(str(path), "…")
    return text


def default_runs_dir() -> Path:
    """Where the Space writes run folders: $CULTURESIM_SPACE_RUNS or a folder in the temp dir."""
    path = Path(os.environ.get("CULTURESIM_SPACE_RUNS") or Path(tempfile.gettempdir()) / "culturesim-space-runs")
    path.mkdir(parents=True, exist_ok=True)
    return path
