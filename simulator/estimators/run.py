"""``culturesim simulate --estimator logprob|verbalized``: a distribution per participant and question.

Why a run like any other: the three readings of a model (sampling, option log-probabilities,
verbalized shares) are only comparable on the same questions, the same participants (their
locations and option orders) and the same folder shape, so ``culturesim score`` and
``culturesim report`` treat them alike. The run folder is the sampling run's
(``config.json`` with an ``estimator`` entry, ``questions.jsonl``, ``responses.jsonl``), with
one row per participant x question that carries ``distribution`` (the option probabilities
in SOURCE order, summing to 1; None unless ``status`` is ``ok``) instead of a parsed answer.

Participants: each has its own option order (``culturesim.simulator.prompts.option_order``) and, with the
prompt modification, its location, so averaging their distributions averages over option
positions. Plans: ``none`` and ``prompt`` for both estimators, ``cao`` for ``logprob`` (the
"average person" prompt read by log-probability), ``config`` combinations for ``verbalized``
(its shares are generated text). Memory and CCSV need generated answers and are refused.

Rows are appended and fsynced question by question; ``--resume`` asks only for the missing
ones (a log-probability does not depend on the batch it is computed in, up to float error).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from culturesim.simulator.backends.base import Backend
from culturesim.simulator.estimators.config import ESTIMATORS
from culturesim.simulator.estimators.logprob import OptionPrompt, logprob_items, remote_logprob_items
from culturesim.simulator.estimators.verbalized import VERBALIZED_VERSION, parse_verbalized, render_verbalized
from culturesim.simulator.participants import PlanSettings, make_participants, parse_plan
from culturesim.simulator.progress import run_progress
from culturesim.simulator.prompts import CAO_TEMPLATES, DEF_TEMPLATES, option_order, render_question
from culturesim.simulator.questions import Question
from culturesim.simulator.runfolder import (
    RESPONSES_FILE,
    RowWriter,
    RunLock,
    Status,
    prepare_run_folder,
    response_row,
    write_rows,
)
from culturesim.simulator.runner import RunSummary, applied_config, build_config, request_seed
from culturesim.simulator.types import GenerationRequest

__all__ = ["check_plan", "simulate_estimator"]

log = logging.getLogger(__name__)


def check_plan(estimator: str, plan: str) -> None:
    """Raise ValueError when ``plan`` cannot be read with ``estimator``."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"Unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    if estimator == "sampling":
        return
    kind, mods = parse_plan(plan)
    allowed = {"logprob": ("none, prompt or cao", {"prompt"}, ("def", "cao")),
               "verbalized": ("none, prompt, config or prompt+config", {"prompt", "config"}, ("def",))}
    names, ok_mods, ok_kinds = allowed[estimator]
    if kind not in ok_kinds or not mods <= ok_mods:
        raise ValueError(
            f"--estimator {estimator} cannot run --plan {plan}: it needs {names} (memory and ccsv need generated "
            f"answers; use --estimator sampling for them)"
        )


def check_backend(estimator: str, backend: Backend) -> bool:
    """Whether ``backend`` is read locally (transformers, or any backend that scores prompts in-process
    with ``next_token_logprobs``, e.g. llamacpp); raise ValueError when it cannot serve ``estimator``."""
    local = getattr(backend, "name", "") == "transformers" or callable(getattr(backend, "next_token_logprobs", None))
    supported = frozenset(getattr(backend, "supported_params", frozenset()))
    if estimator == "logprob" and not local and "top_logprobs" not in supported:
        raise ValueError(
            f"--estimator logprob needs the transformers backend or an OpenAI-compatible server (--backend openai); "
            f"the {getattr(backend, 'name', '?')} backend returns no log-probabilities. Use --estimator verbalized."
        )
    return local


def _labels(rendered: Any) -> tuple[str, ...]:
    """Per SOURCE option, the number the participant sees before it."""
    labels = [""] * len(rendered.order)
    for position, source in enumerate(rendered.order):
        labels[source] = str(rendered.numbers[position])
    return tuple(labels)


class _EstimatorRun:
    def __init__(self, estimator: str, questions: list[Question], backend: Backend, plan: str, seed: int,
                 settings: PlanSettings, participants: list[Any], plan_name: str) -> None:
        self.estimator = estimator
        self.backend = backend
        self.kind, _ = parse_plan(plan)
        self.seed = seed
        self.settings = settings
        self.participants = participants
        self.culture = questions[0].culture
        self.plan_name = plan_name
        self.supported = frozenset(getattr(backend, "supported_params", frozenset()))
        self.local = check_backend(estimator, backend)

    def order(self, p: Any, q: Question) -> tuple[int, ...]:
        return option_order(q, self.seed, p.participant_id, self.settings.shuffle_options)

    def step(self, step: int, q: Question, people: list[Any]) -> list[dict[str, Any]]:
        if self.estimator == "logprob":
            return self._logprob(step, q, people)
        return self._verbalized(step, q, people)

    def _identity(self, step: int, q: Question, p: Any, order: Sequence[int], messages: tuple,
                  config: dict[str, Any] | None) -> dict[str, Any]:
        """The ``response_row`` arguments every row of this run shares (no parsed answer: a distribution)."""
        return {"participant_id": p.participant_id, "question_id": q.id, "step": step, "parallel_id": q.parallel_id,
                "plan": self.plan_name, "estimator": self.estimator, "persona": p.persona(),
                "generation_config": config, "prompt": messages, "option_order": order}

    def _logprob(self, step: int, q: Question, people: list[Any]) -> list[dict[str, Any]]:
        templates = CAO_TEMPLATES if self.kind == "cao" else DEF_TEMPLATES
        items, orders = [], []
        for p in people:
            order = self.order(p, q)
            rendered = render_question(q, self.culture, order, p.location, templates)
            items.append(OptionPrompt(q, ({"role": "user", "content": rendered.text},), _labels(rendered),
                                      f"{p.participant_id}:{q.id}"))
            orders.append(order)
        if self.local:
            results = logprob_items(self.backend, items, batch_size=max(1, int(getattr(self.backend, "batch_size", 16))))
            for r in results:
                r.update(status=Status.OK, raw_text="", tokens_out=0, attempts=1, error=None, detail=None)
            method = "local"
        else:
            results = remote_logprob_items(self.backend, items)
            method = "remote"
        rows = []
        for p, order, item, r in zip(people, orders, items, results):
            row = response_row(
                **self._identity(step, q, p, order, item.messages, None),
                raw_text=r.get("raw_text", ""), status=r["status"], distribution=r["distribution"],
                parse_method=f"logprob-{method}", ai_disclosure=False,
                input_tokens=int(r.get("tokens_in") or 0), output_tokens=int(r.get("tokens_out") or 0),
                attempts=r.get("attempts", 1), error=r.get("error"), latency_s=float(r.get("seconds") or 0.0),
            )
            row["logprob"] = {k: r.get(k) for k in ("estimator", "mass_on_options", "sequences", "answer_token",
                                                     "answer_index", "detail") if k in r}
            rows.append(row)
        return rows

    def _verbalized(self, step: int, q: Question, people: list[Any]) -> list[dict[str, Any]]:
        prompts, configs = [], []
        for p in people:
            prompts.append(render_verbalized(q, self.culture, self.order(p, q), p.location))
            cfg = dataclasses.replace(p.generation, seed=request_seed(self.seed, p.participant_id, step, "verbalized"))
            configs.append(applied_config(cfg, self.supported))
        requests = [GenerationRequest(messages=({"role": "user", "content": v.text},), config=c, key=f"{p.participant_id}:{q.id}")
                    for p, v, c in zip(people, prompts, configs)]
        results = self.backend.generate(requests)
        if len(results) != len(requests):
            raise RuntimeError(f"Backend {self.backend.name!r} returned {len(results)} results for {len(requests)} requests")
        rows = []
        for p, v, c, req, r in zip(people, prompts, configs, requests, results):
            order = v.rendered.order
            if r.error and not (r.text or "").strip():
                status, dist, shares, raw_sum, detail, disclosure = Status.ERROR, None, None, None, "the request failed", False
            else:
                parsed = parse_verbalized(r.text, v.rendered.options, v.rendered.numbers, q.language)
                status, raw_sum, detail, disclosure = parsed.status, parsed.raw_sum, parsed.detail, parsed.ai_disclosure
                shares = [None] * len(order)
                for position, source in enumerate(order):
                    shares[source] = parsed.shares[position]
                dist = None
                if parsed.distribution is not None:
                    dist = [0.0] * len(order)
                    for position, source in enumerate(order):
                        dist[source] = parsed.distribution[position]
            row = response_row(
                **self._identity(step, q, p, order, req.messages, c.to_dict()),
                raw_text=r.text or "", status=status, distribution=dist, parse_method="verbalized",
                ai_disclosure=disclosure, input_tokens=r.input_tokens, output_tokens=r.output_tokens,
                attempts=r.attempts, error=r.error, latency_s=r.latency_s,
            )
            row["verbalized"] = {"version": VERBALIZED_VERSION, "shares": shares, "raw_sum": raw_sum, "detail": detail}
            rows.append(row)
        return rows


def simulate_estimator(
    out_dir: str | Path,
    questions: Sequence[Question],
    backend: Backend,
    estimator: str,
    plan: str = "none",
    participants: int = 20,
    seed: int = 0,
    settings: PlanSettings | None = None,
    max_new_tokens: int = 512,
    shard: tuple[int, int] | None = None,
    resume: bool = False,
    progress: bool = True,
    on_rows: Callable[[list[dict[str, Any]]], None] | None = None,
    selection: dict[str, Any] | None = None,
) -> RunSummary:
    """Run (or resume) a ``logprob`` or ``verbalized`` run into ``out_dir``; the arguments are
    ``culturesim.simulator.runner.simulate``'s. Returns its ``RunSummary``."""

    started = time.perf_counter()
    check_plan(estimator, plan)
    if estimator == "sampling":
        raise ValueError("simulate_estimator runs logprob and verbalized; sampling is simulator.runner.simulate")
    questions = list(questions)
    if not questions:
        raise ValueError("No questions to ask: check --culture/--language/--dimensions/--questions")
    if len({q.culture for q in questions}) != 1:
        raise ValueError(f"All questions of a run must share one culture, got {sorted({q.culture for q in questions})}")
    if len({q.id for q in questions}) != len(questions):
        raise ValueError("Question ids must be unique within a run")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens!r} must be >= 1")
    settings = settings or PlanSettings()
    check_backend(estimator, backend)
    out = Path(out_dir)
    config = build_config(questions, backend, plan, participants, seed, settings, max_new_tokens, shard, selection,
                          estimator=estimator)
    with RunLock(out):  # one writer per folder (re-entrant: the command line already holds it)
        return _run_locked(out, questions, backend, estimator, plan, participants, seed, settings, max_new_tokens,
                           config, resume, progress, on_rows, started)


def _run_locked(out: Path, questions: list[Question], backend: Backend, estimator: str, plan: str, participants: int,
                seed: int, settings: PlanSettings, max_new_tokens: int, config: dict[str, Any], resume: bool,
                progress: bool, on_rows: Callable[[list[dict[str, Any]]], None] | None, started: float) -> RunSummary:
    existing = prepare_run_folder(out, config, resume, questions)
    failed = [r for r in existing if r.get("status") == Status.ERROR]
    if failed:  # failed requests are not final: a resume asks them again
        existing = [r for r in existing if r.get("status") != Status.ERROR]
        write_rows(out, existing)
        log.info("%s: asking %d failed request(s) again", out, len(failed))
    ids = config["participant_ids"]
    people = make_participants(participants, questions[0].culture, plan, seed, settings, max_new_tokens, ids=ids)
    run = _EstimatorRun(estimator, questions, backend, plan, seed, settings, people, config["plan"])
    index = {q.id for q in questions}
    have: set[tuple[int, str]] = set()
    for row in existing:
        key = (row["participant_id"], row["question_id"])
        if key in have:
            raise ValueError(f"{out / RESPONSES_FILE}: duplicate row for participant {key[0]}, question {key[1]!r}")
        if row["question_id"] not in index or row["participant_id"] not in set(ids):
            raise ValueError(f"{out / RESPONSES_FILE}: row {key} does not belong to this run's questions/participants")
        have.add(key)
    counts: Counter[str] = Counter(r["status"] for r in existing)
    written = tokens = 0
    total = len(ids) * len(questions)
    bar = run_progress(total, len(have), f"{estimator}:{config['plan']}", progress)
    try:
        with RowWriter(out / RESPONSES_FILE) as writer:
            for step, q in enumerate(questions):
                missing = [p for p in people if (p.participant_id, q.id) not in have]
                if not missing:
                    continue
                rows = run.step(step, q, missing)
                writer.write(rows)
                written += len(rows)
                counts.update(r["status"] for r in rows)
                tokens += sum(r["tokens"]["output"] for r in rows)
                bar.update(len(rows))
                if on_rows:
                    on_rows(rows)
    finally:
        bar.close()
    elapsed = time.perf_counter() - started
    log.info("%s: %d rows (%d new) in %.1fs; statuses %s", out, total, written, elapsed, dict(counts))
    return RunSummary(out, total, written, dict(counts), elapsed, tokens)
