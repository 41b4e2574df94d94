"""``culturesim simulate``: run a model as many simulated participants, losing nothing.

Why this shape:

- **Steps across participants.** Questions are asked in sequence (memory builds up); at
  each step the requests of all participants (of this shard, ``WINDOW`` at a time) go to the
  backend as one batch, so a local model batches across participants and a remote one keeps
  them in flight.
- **Append-only rows.** ``responses.jsonl`` gets one row per participant x question,
  appended and fsynced as each local chunk or each group of finished remote requests
  completes (so a huge run shows progress on disk). A run killed at any moment (SIGKILL, even mid-line)
  continues with ``--resume``: a truncated last line is dropped, completed rows are kept,
  memory is replayed from the rows, and a step that was partly written is generated again
  as a whole batch on a local backend (so a seeded local run sees the same batch as before;
  remote backends send each request alone and are asked only for the missing rows), and
  only its missing rows are written. No duplicate, no missing row.
- **Reproducible.** Personas come from ``random.Random(f"{seed}:{participant}")``, option
  orders from ``f"{seed}:{participant}:{question_id}"``, memory deletions from
  ``f"{seed}:{participant}:{step}:memory"`` and every request carries a seed derived from
  ``(seed, participant, step, stage)``. With a seeded backend, an interrupted and resumed
  run writes the same rows (timing aside) as an uninterrupted one.
- **Real people, optionally.** ``personas=`` (``culturesim.simulator.personas``) makes each DEF
  participant a respondent drawn by survey weight (its own stream ``f"{seed}:{participant}:respondent"``);
  the prompt states its sex and age group and ``config.json`` records the source under ``personas``.
  Without it nothing changes: no key, the same prompts.
- **Honest configs.** Sampling parameters the backend cannot apply
  (``Backend.supported_params``) are sent and recorded as the backend's default (None,
  one beam), and ``config.json`` lists them under ``config_diversity.unavailable``.

- **Failures are not final.** A request that runs out of attempts becomes an ``error`` row;
  the command exits 3 with the command that continues it, and ``--resume`` asks those rows
  again (the new row keeps the count of earlier attempts). A backend that cannot answer at
  all (``BackendUnavailable``) stops the run at once, before writing failed rows.
- **One writer.** The folder is locked while written (``culturesim.simulator.runfolder``), and every user
  error is checked before the model loads where it can be.

Run folder: ``config.json`` (everything needed to reproduce; no secrets; written last, so a
folder without it is an unfinished set-up), ``questions.jsonl`` (a snapshot of the questions
asked, for scoring), ``responses.jsonl``, and the lock's ``.culturesim.lock`` /
``.culturesim.writer`` (see ``culturesim.simulator.runfolder``).

``--shard K/N`` (K is 1-based, 1..N) keeps the participants whose id ``p`` (0-based) has
``p % N == K - 1``; ``culturesim merge`` joins the shard folders. A shard batches only its
own participants, so a sharded local run is reproducible shard by shard, not row-identical
to an unsharded one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culturesim.simulator import __version__
from culturesim.simulator.backends.base import Backend, RemoteBackend
from culturesim.simulator.baselines import CcsvItem, run_ccsv
from culturesim.simulator.eta import StepEta, format_seconds, memory_loads
from culturesim.simulator.memory import MEMORY_VERSION, Memory, memory_rng
from culturesim.simulator.parsing import PARSER_VERSION, parse_response
from culturesim.simulator.participants import (
    Participant,
    PlanSettings,
    canonical_plan,
    make_participant,
    make_participants,
    parse_plan,
)
from culturesim.simulator.personas import PersonaSource, check_persona_plan
from culturesim.simulator.presentation import Presentation
from culturesim.simulator.prompts import (CAO_TEMPLATES, DEF_TEMPLATES, PROMPT_VERSION, RenderedQuestion, option_order,
                                          render_question, template_language)
from culturesim.simulator.questions import Question
from culturesim.simulator.progress import run_progress
from culturesim.simulator.runfolder import (
    RESPONSES_FILE,
    RUN_FORMAT,
    RowWriter,
    RunLock,
    Status,
    now,
    prepare_run_folder,
    recorded_command,
    response_row,
    version_fields,
    write_rows,
)
from culturesim.simulator.types import GenerationConfig, GenerationRequest, GenerationResult

__all__ = [
    "BACKEND_KEYS",
    "RUNNER_VERSION",
    "RunSummary",
    "applied_config",
    "build_config",
    "parse_shard",
    "request_seed",
    "shard_participants",
    "simulate",
]

log = logging.getLogger(__name__)

RUNNER_VERSION = "1.0"
SAMPLING_PARAMS = ("do_sample", "temperature", "top_p", "num_beams")
BACKEND_KEYS = ("model", "backend", "config_diversity")


# --------------------------------------------------------------------------------------
# Small pure helpers
# --------------------------------------------------------------------------------------


def request_seed(seed: int, participant_id: int, step: int, stage: str = "answer") -> int:
    """A 31-bit seed for one request, from the run seed and the request's identity."""
    digest = hashlib.sha256(f"{seed}:{participant_id}:{step}:{stage}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"2/4"`` -> ``(2, 4)``; K is 1-based (1..N)."""
    if text is None:
        return None
    try:
        k_text, n_text = text.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise ValueError(f"--shard {text!r} must look like K/N, e.g. 1/4 (K is 1-based)") from None
    if n < 1 or not 1 <= k <= n:
        raise ValueError(f"--shard {text!r}: need 1 <= K <= N (K is 1-based, e.g. 1/4 ... 4/4)")
    return k, n


def shard_participants(participants: int, shard: tuple[int, int] | None) -> list[int]:
    """The participant ids (0-based) a shard runs: ``p % N == K - 1``."""
    ids = list(range(participants))
    if shard is None:
        return ids
    k, n = shard
    if n < 1 or not 1 <= k <= n:
        raise ValueError(f"shard {k}/{n}: need 1 <= K <= N (K is 1-based, e.g. 1/4 ... 4/4)")
    ids = [p for p in ids if p % n == k - 1]
    if not ids:
        raise ValueError(f"Shard {k}/{n} gets no participant out of {participants}; use at most {participants} shards")
    return ids


def questions_fingerprint(questions: Sequence[Question]) -> str:
    """Hash of what the model is shown (ids, texts, options, codes, types), in order."""
    h = hashlib.sha256()
    for q in questions:
        h.update(json.dumps([q.id, q.language, q.question, list(q.options), list(q.option_codes), q.question_type],
                            ensure_ascii=False).encode())
    return h.hexdigest()


def applied_config(config: GenerationConfig, supported: frozenset[str]) -> GenerationConfig:
    """What the backend really applies: unsupported sampling parameters become its defaults."""
    changes: dict[str, Any] = {}
    if "num_beams" not in supported:
        changes["num_beams"] = 1
    if "temperature" not in supported:
        changes["temperature"] = None
    if "top_p" not in supported:
        changes["top_p"] = None
    if "do_sample" not in supported:
        changes["do_sample"] = True
    if "min_new_tokens" not in supported:
        changes["min_new_tokens"] = None
    return dataclasses.replace(config, **changes) if changes else config


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------


@dataclass
class RunSummary:
    out_dir: Path
    rows_total: int
    rows_written: int
    """Rows written by this call (the others were there already)."""
    status_counts: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    output_tokens: int = 0


@dataclass
class _Exchange:
    """One participant's answer to one question, before it becomes a row."""

    participant: Participant
    rendered: RenderedQuestion
    messages: tuple[dict[str, str], ...]
    config: GenerationConfig
    text: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    attempts: int = 1
    error: str | None = None
    empty: str | None = None
    earlier_attempts: int = 0
    """Attempts spent on this row by earlier runs of the folder, whose rows failed (``error``)."""
    earlier_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class _Run:
    def __init__(self, questions: list[Question], backend: Backend, plan: str, seed: int, settings: PlanSettings,
                 participants: list[Participant], max_new_tokens: int, presentation: Presentation | None = None,
                 personas: PersonaSource | None = None) -> None:
        self.questions = questions
        self.presentation = presentation
        self.personas = personas
        self.backend = backend
        self.kind, self.mods = parse_plan(plan)
        self.seed = seed
        self.settings = settings
        self.participants = participants
        self.max_new_tokens = max_new_tokens
        self.supported = frozenset(getattr(backend, "supported_params", frozenset()))
        self.culture = questions[0].culture
        self.plan_name = canonical_plan(plan)
        self.memories = {p.participant_id: Memory(p.memory_cap) for p in participants if p.memory_cap is not None}
        self.by_id = {p.participant_id: p for p in participants}
        self._make: Callable[[int], Participant] | None = None
        self.templates = CAO_TEMPLATES if self.kind == "cao" else DEF_TEMPLATES

    @classmethod
    def lazy(cls, questions: list[Question], backend: Backend, plan: str, seed: int, settings: PlanSettings,
             max_new_tokens: int, presentation: Presentation | None = None,
             personas: PersonaSource | None = None) -> "_Run":
        """A run whose participants are made when first asked (``participant``), so the first rows
        of a huge run reach disk at once instead of after every persona has been drawn."""
        run = cls(questions, backend, plan, seed, settings, [], max_new_tokens, presentation, personas)
        culture = questions[0].culture
        run._make = lambda pid: make_participant(pid, culture, plan, seed, settings, max_new_tokens, personas)
        return run

    def participant(self, pid: int) -> Participant:
        p = self.by_id.get(pid)
        if p is None:
            if self._make is None:
                raise KeyError(f"participant {pid} is not part of this run")
            p = self.by_id[pid] = self._make(pid)
            self.participants.append(p)
            if p.memory_cap is not None:
                self.memories[pid] = Memory(p.memory_cap)
        return p

    def render(self, p: Participant, q: Question) -> RenderedQuestion:
        demographics = p.demographics(template_language(q.language, self.templates)) if p.respondent else None
        if self.presentation is not None:
            return self.presentation.render(q, self.culture, self.seed, p.participant_id, p.location,
                                            self.settings.shuffle_options, self.templates, demographics)
        order = option_order(q, self.seed, p.participant_id, self.settings.shuffle_options)
        return render_question(q, self.culture, order, p.location, self.templates, demographics=demographics)

    def config(self, p: Participant, step: int, stage: str = "answer", max_new_tokens: int | None = None) -> GenerationConfig:
        cfg = dataclasses.replace(p.generation, seed=request_seed(self.seed, p.participant_id, step, stage))
        if max_new_tokens is not None:
            cfg = dataclasses.replace(cfg, max_new_tokens=max_new_tokens)
        return applied_config(cfg, self.supported)

    def exchanges(self, step: int, q: Question, pids: Sequence[int]) -> list[_Exchange]:
        """The requests of participants ``pids`` for question ``q``, with their memory as it is now."""
        exchanges = []
        for pid in pids:
            p = self.participant(pid)
            rendered = self.render(p, q)
            memory = self.memories.get(pid)
            history = tuple(memory.messages()) if memory else ()
            messages = history + ({"role": "user", "content": rendered.text},)
            exchanges.append(_Exchange(p, rendered, messages, self.config(p, step)))
        return exchanges

    def answer(self, step: int, q: Question, exchanges: list[_Exchange]) -> Iterator[list[_Exchange]]:
        """Send ``exchanges`` to the backend as one batch; yield them filled in, group by group, as
        the backend finishes them (a local chunk, the remote requests done so far)."""
        if not exchanges:
            return
        if self.kind == "ccsv":
            self._ccsv(step, exchanges)
            yield exchanges
            return
        requests = [GenerationRequest(messages=e.messages, config=e.config, key=f"{e.participant.participant_id}:{q.id}")
                    for e in exchanges]
        seen = 0
        # A wrapper that is not a Backend (the Space's guard) only promises generate(): its checks
        # and redaction must not be bypassed through attribute forwarding.
        groups = self.backend.iter_generate(requests) if isinstance(self.backend, Backend) \
            else [list(enumerate(self.backend.generate(requests)))]
        for group in groups:
            filled = []
            for i, r in group:
                if not 0 <= i < len(exchanges):
                    raise RuntimeError(f"Backend {self.backend.name!r} returned a result for request {i} of {len(exchanges)}")
                _take(exchanges[i], r)
                filled.append(exchanges[i])
            seen += len(filled)
            yield filled
        if seen != len(exchanges):
            raise RuntimeError(f"Backend {self.backend.name!r} returned {seen} results for {len(exchanges)} requests")

    def step(self, step: int, q: Question, only: set[int] | None = None) -> list[_Exchange]:
        """Generate one question for the participants (all, or the ids in ``only``) as one batch."""
        pids = [p.participant_id for p in self.participants if only is None or p.participant_id in only]
        exchanges = self.exchanges(step, q, pids)
        for _ in self.answer(step, q, exchanges):
            pass
        return exchanges

    def _ccsv(self, step: int, exchanges: list[_Exchange]) -> None:
        s = self.settings
        items = [
            CcsvItem(key=f"{e.participant.participant_id}:{e.rendered.question_id}",
                     participant_id=e.participant.participant_id, step=step, messages=e.messages,
                     request=e.rendered.request, language=e.rendered.language, country=self.culture)
            for e in exchanges
        ]
        by_id = {e.participant.participant_id: e.participant for e in exchanges}
        vote_tokens = min(64, self.max_new_tokens)

        def config_for(item: CcsvItem, stage: str, index: int) -> GenerationConfig:
            return self.config(by_id[item.participant_id], step, f"{stage}:{index}",
                               vote_tokens if stage == "vote" else None)

        outcomes = run_ccsv(self.backend, items, s.ccsv_critiques, s.ccsv_revisions, s.ccsv_votes, config_for)
        for e, o in zip(exchanges, outcomes):
            e.text, e.error = o.text, o.error
            e.input_tokens, e.output_tokens = o.input_tokens, o.output_tokens
            e.latency_s, e.attempts = o.latency_s, o.attempts
            e.extra = {"ccsv": {"chosen": o.chosen, "votes": o.votes, "vote_status": o.vote_status, "stages": o.stages}}

    def row(self, step: int, q: Question, e: _Exchange) -> dict[str, Any]:
        p, r = e.participant, e.rendered
        if e.error and not e.text.strip():
            status, positions, method, disclosure = Status.ERROR, (), "none", False
        elif e.empty is not None:
            status, positions, method, disclosure = Status.EMPTY, (), "none", False
        else:
            parsed = parse_response(r.parser_text(e.text), r.options, q.question_type, scale=r.scale, language=q.language)
            status, positions, method, disclosure = parsed.status, parsed.positions, parsed.method, parsed.ai_disclosure
        row = response_row(
            participant_id=p.participant_id, question_id=q.id, step=step, parallel_id=q.parallel_id,
            plan=self.plan_name, persona=p.persona(), generation_config=e.config.to_dict(), prompt=e.messages,
            option_order=r.order, raw_text=e.text, status=status, positions=positions,
            option_indices=r.to_source(positions), parsed=r.to_codes(positions), parse_method=method,
            ai_disclosure=disclosure, input_tokens=e.input_tokens, output_tokens=e.output_tokens,
            attempts=e.attempts + e.earlier_attempts, error=e.error, latency_s=e.latency_s, empty_completion=e.empty,
        )
        if e.earlier_attempts:
            row["earlier_error"] = e.earlier_error
        if self.presentation is not None:
            row["presentation"] = {"order": self.presentation.order, "labels": r.labels, "variant": r.variant}
        row.update(e.extra)
        return row

    def remember(self, step: int, q: Question, row: dict[str, Any]) -> None:
        self.remember_text(step, q, row["participant_id"], row.get("raw_text") or "")

    def remember_text(self, step: int, q: Question, pid: int, raw_text: str) -> None:
        memory = self.memories.get(pid)
        if memory is None:
            return
        rendered = self.render(self.participant(pid), q)
        memory.update(rendered.request, raw_text, memory_rng(self.seed, pid, step), rendered.language)


def _take(e: _Exchange, r: GenerationResult) -> None:
    e.text = r.text or ""
    e.input_tokens, e.output_tokens = r.input_tokens, r.output_tokens
    e.latency_s, e.attempts, e.error = r.latency_s, r.attempts, r.error
    e.empty = getattr(r, "empty", None)


def build_config(
    questions: Sequence[Question],
    backend: Backend | None,
    plan: str,
    participants: int,
    seed: int,
    settings: PlanSettings,
    max_new_tokens: int,
    shard: tuple[int, int] | None,
    selection: dict[str, Any] | None = None,
    presentation: Presentation | None = None,
    estimator: str = "sampling",
    personas: PersonaSource | None = None,
) -> dict[str, Any]:
    """The run's ``config.json``: everything that determines its rows, and no secret.

    With ``backend=None`` the backend-dependent keys (``model``, ``backend``,
    ``config_diversity``) are None: enough to check a resume before loading a model.
    Runs of another ``estimator`` than sampling (``culturesim.simulator.estimators``) carry an
    ``estimator`` entry; sampling runs have none (readers default to sampling).
    """
    kind, mods = parse_plan(plan)
    supported = frozenset(getattr(backend, "supported_params", frozenset()))
    unavailable = [p for p in SAMPLING_PARAMS if p not in supported]
    varied = "config" in mods
    diversity = None if backend is None else {
        "modification_on": varied,
        "params": list(SAMPLING_PARAMS),
        "applied": [p for p in SAMPLING_PARAMS if p in supported],
        "unavailable": unavailable,
        "note": (
            f"{backend.name} cannot apply {', '.join(unavailable)}: those were sent and recorded as the "
            "backend default, not varied" if unavailable else "all sampling parameters applied"
        ),
    }
    config = {
        "format": RUN_FORMAT,
        **version_fields({"culturesim": __version__, "runner": RUNNER_VERSION, "prompt": PROMPT_VERSION,
                          "parser": PARSER_VERSION, "memory": MEMORY_VERSION}),
        "model": getattr(backend, "model_id", "") if backend is not None else None,
        "backend": backend.describe() if backend is not None else None,
        "plan": canonical_plan(plan),
        "plan_kind": kind,
        "modifications": sorted(mods),
        "plan_settings": settings.to_dict(),
        "seed": seed,
        "participants": participants,
        "shard": {"k": shard[0], "n": shard[1]} if shard else None,
        "participant_ids": shard_participants(participants, shard),
        "max_new_tokens": max_new_tokens,
        "culture": questions[0].culture,
        "languages": sorted({q.language for q in questions}),
        "question_selection": selection or {},
        "question_ids": [q.id for q in questions],
        "questions_sha256": questions_fingerprint(questions),
        "config_diversity": diversity,
        "created_at": now(),
        "command": recorded_command(),
    }
    if presentation is not None:  # only where used: older run folders stay resumable
        config["presentation"] = presentation.to_dict()
    if personas is not None:  # likewise: a run without personas has no key
        config["personas"] = personas.to_dict()
    if estimator != "sampling":
        # imported here: the estimators' versions live beside torch code (estimators.logprob)
        from culturesim.simulator.estimators.config import estimator_config

        config["estimator"] = estimator_config(estimator)
    return config


WINDOW = 4096
"""Participants per backend call within a step. A local backend batches (and a seeded one
reproduces) within a window; bounding it keeps the requests, texts and rows of a huge run
(``--participants 100000``) in memory a window at a time. Windows are fixed slices of the
participant ids, so a resumed run regenerates exactly the windows it regenerated before."""


ETA_SAMPLE = 2000
"""Participants whose memory caps feed the ETA's per-step load (an unbiased sample of i.i.d. draws)."""


@dataclass
class _Earlier:
    """What a failed (``error``) row of an earlier run leaves to the row that replaces it."""

    attempts: int
    error: str | None


def simulate(
    out_dir: str | Path,
    questions: Sequence[Question],
    backend: Backend,
    plan: str = "all",
    participants: int = 20,
    seed: int = 0,
    settings: PlanSettings | None = None,
    max_new_tokens: int = 512,
    shard: tuple[int, int] | None = None,
    resume: bool = False,
    progress: bool = True,
    on_rows: Callable[[list[dict[str, Any]]], None] | None = None,
    selection: dict[str, Any] | None = None,
    presentation: Presentation | None = None,
    personas: PersonaSource | None = None,
) -> RunSummary:
    """Run (or resume) a simulation into ``out_dir``; see the module docstring.

    ``on_rows`` is called with the rows just written, each time some are (for live views).
    ``selection`` records how the questions were chosen (culture, filters, dataset path).
    On resume, rows whose requests failed (status ``error``) are asked again; the new row
    counts the earlier attempts. Raises ``FolderBusy`` when another process writes ``out_dir``
    and ``BackendUnavailable`` when the backend cannot answer at all (rows written so far stay).
    ``presentation`` changes option order, labels or wording (``culturesim.simulator.presentation``);
    ``personas`` makes each participant a real respondent (``culturesim.simulator.personas``, DEF
    plans and English questions only: ValueError otherwise).
    """
    started = time.perf_counter()
    questions = list(questions)
    if not questions:
        raise ValueError("No questions to ask: check --culture/--language/--dimensions/--questions")
    if len({q.culture for q in questions}) != 1:
        raise ValueError(f"All questions of a run must share one culture, got {sorted({q.culture for q in questions})}")
    if len({q.id for q in questions}) != len(questions):
        raise ValueError("Question ids must be unique within a run")
    settings = settings or PlanSettings()
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens!r} must be >= 1")
    out = Path(out_dir)
    if personas is not None:
        check_persona_plan(parse_plan(plan)[0])
        other = sorted({q.language for q in questions if template_language(q.language) != "en"})
        if other:
            raise ValueError(f"personas state sex and age in English only; the run has questions in {', '.join(other)}: "
                             "ask the English questions (--language en) or drop --personas")
    config = build_config(questions, backend, plan, participants, seed, settings, max_new_tokens, shard, selection,
                          presentation, personas=personas)
    with RunLock(out):
        existing_rows = prepare_run_folder(out, config, resume, questions)
        return _simulate_locked(out, questions, backend, plan, participants, seed, settings, max_new_tokens, config,
                                existing_rows, progress, on_rows, started, presentation, personas)


def _simulate_locked(out: Path, questions: list[Question], backend: Backend, plan: str, participants: int, seed: int,
                     settings: PlanSettings, max_new_tokens: int, config: dict[str, Any],
                     existing_rows: list[dict[str, Any]], progress: bool,
                     on_rows: Callable[[list[dict[str, Any]]], None] | None, started: float,
                     presentation: Presentation | None = None, personas: PersonaSource | None = None) -> RunSummary:
    ids = config["participant_ids"]
    run = _Run.lazy(questions, backend, plan, seed, settings, max_new_tokens, presentation, personas)
    if config["config_diversity"]["modification_on"] and config["config_diversity"]["unavailable"]:
        log.warning("config diversity: %s", config["config_diversity"]["note"])

    index = {q.id: i for i, q in enumerate(questions)}
    id_set = set(ids)
    # Only what resuming needs is kept of the rows on disk: which exist, and (for participants
    # with a memory) the text to replay, so a huge run's rows are not all held in memory.
    have: dict[tuple[int, str], str] = {}
    earlier: dict[tuple[int, str], _Earlier] = {}
    counts: Counter[str] = Counter()
    kept: list[dict[str, Any]] = []
    for row in existing_rows:
        key = (row["participant_id"], row["question_id"])
        if key in have or key in earlier:
            raise ValueError(f"{out / RESPONSES_FILE}: duplicate row for participant {key[0]}, question {key[1]!r}; "
                             "two processes wrote this folder (before runs were locked): run it again into a new --out")
        if row["question_id"] not in index or row["participant_id"] not in id_set:
            raise ValueError(f"{out / RESPONSES_FILE}: row {key} does not belong to this run's questions/participants")
        if row["status"] == Status.ERROR:
            earlier[key] = _Earlier(int(row.get("attempts") or 0), row.get("error"))
            continue
        has_memory = run.participant(key[0]).memory_cap is not None
        have[key] = (row.get("raw_text") or "") if has_memory else ""
        counts[row["status"]] += 1
        kept.append(row)
    if earlier:
        # Failed requests are not final: their rows leave the file (atomically, under the lock)
        # and are asked again below; each new row carries the attempts spent before.
        write_rows(out, kept)
        log.info("%s: asking again the %d rows whose requests failed last time", out, len(earlier))
    del kept, existing_rows

    total = len(ids) * len(questions)
    counts_new: Counter[str] = Counter()
    tokens = 0
    remote = isinstance(backend, RemoteBackend)
    bar = run_progress(total, len(have), config["plan"], progress)
    # Later steps cost more (memory prompts grow): the ETA models that (simulator.eta).
    # Memory caps are drawn independently per participant: the first ETA_SAMPLE of them give the mean.
    caps = [run.participant(pid).memory_cap for pid in ids[:ETA_SAMPLE]]
    eta = StepEta(memory_loads(len(questions), [c for c in caps if c is not None]))
    resumed_steps = {i for i, q in enumerate(questions) if all((pid, q.id) in have for pid in ids)}
    try:
        with RowWriter(out / RESPONSES_FILE) as writer:
            for step, q in enumerate(questions):
                step_started, step_cpu = time.perf_counter(), time.process_time()
                step_load = sum(map(len, run.memories.values())) / len(run.memories) if run.memories else 0.0
                generated = False
                for start in range(0, len(ids), WINDOW):
                    window = ids[start:start + WINDOW]
                    missing = [pid for pid in window if (pid, q.id) not in have]
                    if missing:
                        # A local backend's output depends on the batch it is in: regenerate the whole
                        # window so a resumed seeded run matches an uninterrupted one. A remote backend
                        # sends every request on its own: only the missing ones are asked again.
                        todo = set(missing)
                        exchanges = run.exchanges(step, q, missing if remote else window)
                        for e in exchanges:
                            prior = earlier.get((e.participant.participant_id, q.id))
                            if prior is not None:
                                e.earlier_attempts, e.earlier_error = prior.attempts, prior.error
                        for group in run.answer(step, q, exchanges):
                            new_rows = [run.row(step, q, e) for e in group if e.participant.participant_id in todo]
                            writer.write(new_rows)
                            for r in new_rows:
                                todo.discard(r["participant_id"])
                                run.remember_text(step, q, r["participant_id"], r["raw_text"])
                            counts_new.update(r["status"] for r in new_rows)
                            tokens += sum(r["tokens"]["output"] for r in new_rows)
                            bar.update(len(new_rows))
                            if on_rows and new_rows:
                                on_rows(new_rows)
                    for pid in window:
                        text = have.get((pid, q.id))
                        if text is not None:
                            run.remember_text(step, q, pid, text)
                    generated = generated or bool(missing)
                if generated:
                    eta.record(step, time.perf_counter() - step_started, step_load, time.process_time() - step_cpu)
                    bar.set_postfix_str(f"eta {format_seconds(eta.remaining(resumed_steps))}", refresh=True)
    finally:
        bar.close()
    elapsed = time.perf_counter() - started
    counts.update(counts_new)
    written = sum(counts_new.values())
    log.info("%s: %d rows (%d new) in %.1fs; statuses %s", out, total, written, elapsed, dict(counts))
    return RunSummary(out, total, written, dict(counts), elapsed, tokens)
