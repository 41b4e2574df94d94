"""``culturesim simulate``: parse the run's options, check what a user can get wrong, call
``culturesim.simulator.runner.simulate`` (or the logprob/verbalized estimators).

Why apart from the runner: the run loop is a library function (the Space, the ablations and
the invariance battery call it too); only the command line knows flags, the typed command to
repeat on ``--resume`` and exit statuses.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import logging
import re
import secrets
import shlex
import sys
from pathlib import Path

from culturesim.simulator.backends import available_backends, get_backend
from culturesim.simulator.backends.base import Backend, BackendUnavailable
from culturesim.simulator.backends.model_source import resolve_model_source
from culturesim.simulator.cli import EXIT_INCOMPLETE
from culturesim.simulator.cli.argtypes import csv_list, positive_int
from culturesim.simulator.cli.backend_args import add_model_arguments, backend_kwargs
from culturesim.simulator.embedded import EMBEDDED_MODEL
from culturesim.simulator.estimators.run import check_plan, simulate_estimator
from culturesim.simulator.participants import PlanSettings, canonical_plan, parse_plan, plan_names
from culturesim.simulator.personas import PERSONA_SOURCES, check_persona_plan, load_persona_source
from culturesim.simulator.presentation import Paraphrases, Presentation
from culturesim.simulator.questions import load_questions
from culturesim.metrics.cultural_alignment import VALUE_DIMENSIONS
from culturesim.simulator.runfolder import (
    CONFIG_FILE,
    RESPONSES_FILE,
    RunLock,
    check_out_dir,
    check_resumable,
    holds_anything,
    load_run_config,
    read_rows,
    redact_argv,
    remove_if_only_lock,
)
from culturesim.simulator.runner import (
    BACKEND_KEYS,
    build_config,
    parse_shard,
    shard_participants,
    simulate,
)

__all__ = ["add_arguments", "main"]

log = logging.getLogger(__name__)


def _float_range(text: str) -> tuple[float, float]:
    try:
        parts = [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} must be LO,HI (e.g. 0.7,1.3) or one number") from None
    if len(parts) == 1:
        return parts[0], parts[0]
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"{text!r} must be LO,HI (e.g. 0.7,1.3) or one number")
    return parts[0], parts[1]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value:g} must be > 0 seconds")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = PlanSettings()
    g = parser.add_argument_group("model")
    g.add_argument("--backend", default="transformers", choices=available_backends(), help="model backend (default: transformers)")
    add_model_arguments(g)
    g.add_argument("--max-new-tokens", type=positive_int, default=512, help="generated tokens per answer (paper: 512)")
    g.add_argument("--request-timeout", type=_positive_float, default=None, metavar="SECONDS",
                   help="remote backends: give up one attempt of a request after this long (default: openai 60, "
                        "anthropic 120); a request takes at most about max-attempts x (timeout + 1 s) plus backoff")
    g.add_argument("--max-attempts", type=positive_int, default=None, metavar="N",
                   help="remote backends: tries per request, retries included (default: 6); a request still failing "
                        "is written as an `error` row that --resume asks again")
    g = parser.add_argument_group("questions")
    g.add_argument("--culture", default="US",
                   help="dataset config of the questions: a culture (US, CN, JP, EG) or US_2024 for the GSS 2024 wave (default: US)")
    g.add_argument("--language", default=None, help="question language (default: the culture's native language)")
    g.add_argument("--questions", type=positive_int, default=None, metavar="N", help="ask the first N questions (default: all)")
    g.add_argument("--dimensions", type=csv_list, default=None, help=f"value dimensions, comma separated ({','.join(VALUE_DIMENSIONS)})")
    g.add_argument("--topics", type=csv_list, default=None, help="topics, comma separated")
    g.add_argument("--question-ids", type=csv_list, default=None, help="question ids, comma separated")
    g.add_argument("--dataset-dir", type=Path, default=None, help="built dataset folder (default: dataset_builder/dataset)")
    g = parser.add_argument_group("plan")
    g.add_argument("--plan", default="all", help=f"diversity plan: {', '.join(plan_names())} (default: all = DEF)")
    g.add_argument("--participants", type=positive_int, default=20, help="simulated participants (paper: 20)")
    g.add_argument("--seed", type=int, default=None, help="run seed (default: random, recorded; on --resume the recorded one)")
    g.add_argument("--max-beams", type=positive_int, default=d.max_beams, help=f"config plan: num_beams in 1..max (paper: {d.max_beams})")
    g.add_argument("--max-memory", type=positive_int, default=d.max_memory, help=f"memory plan: cap in 1..max (paper: {d.max_memory})")
    g.add_argument("--temperature-range", type=_float_range, default=d.temperature_range,
                   help="config plan: temperature LO,HI (default 0.7,1.3; paper: 1)")
    g.add_argument("--top-p-range", type=_float_range, default=d.top_p_range, help="config plan: top_p LO,HI (default 0.9,1.0; paper: 1)")
    g.add_argument("--do-sample-prob", type=float, default=d.do_sample_prob,
                   help="config plan: probability a participant samples (default 1 = paper's do_sample true)")
    g.add_argument("--no-shuffle", action="store_true", help="keep the source option order (default: shuffle per participant)")
    g.add_argument("--personas", default="none", choices=("none", *PERSONA_SOURCES),
                   help="respondents: each participant is a real respondent of the culture's respondents config (US: "
                        "GSS 2022, US_2024: GSS 2024) drawn by survey weight; the prompt states their sex and age "
                        "group and the rows record them, so `score` shows the sex x age spread (default: none)")
    g.add_argument("--paraphrases", type=Path, default=None,
                   help="folder from `culturesim dataset expand`: each participant gets a variant (or the source wording)")
    g.add_argument("--ccsv-critiques", type=int, default=d.ccsv_critiques, help="ccsv: critiques per answer")
    g.add_argument("--ccsv-revisions", type=int, default=d.ccsv_revisions, help="ccsv: revisions voted on")
    g.add_argument("--ccsv-votes", type=int, default=d.ccsv_votes, help="ccsv: self-votes")
    g = parser.add_argument_group("run")
    g.add_argument("--out", type=Path, required=True, help="run folder to write (must be new or empty, unless --resume)")
    g.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    g.add_argument("--shard", default=None, help="run only shard K/N of the participants (K 1-based: p %% N == K-1)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--estimator", default="sampling", choices=("sampling", "logprob", "verbalized"),
                   help="how answers are read: sampling (DEF participants' answers, default), logprob (option "
                        "probabilities), verbalized (stated shares); see simulator/estimators")


def _check_selection(args: argparse.Namespace) -> None:
    """Name the filter value that matches nothing, with the values that exist (before any load)."""
    pool = load_questions(culture=args.culture, language=args.language, dataset_dir=args.dataset_dir)
    if args.topics:
        known = sorted({q.topic for q in pool if q.topic})
        bad = [t for t in args.topics if t not in set(known)]
        if bad:
            close = {t: difflib.get_close_matches(t, known, n=1) for t in bad}
            hint = "; ".join(f"did you mean {c[0]!r} for {t!r}?" for t, c in close.items() if c)
            raise ValueError(f"--topics: no question of culture {args.culture} has topic {', '.join(map(repr, bad))}. "
                             f"{hint + ' ' if hint else ''}Topics: {', '.join(known)}")
    if args.question_ids:
        known_ids = {q.id for q in pool}
        bad = [i for i in args.question_ids if i not in known_ids]
        if bad:
            close = difflib.get_close_matches(bad[0], sorted(known_ids), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"--question-ids: {', '.join(map(repr, bad))} not among the {len(known_ids)} questions of "
                             f"culture {args.culture}{f' in language {args.language}' if args.language else ''}.{hint} "
                             f"Ids look like {sorted(known_ids)[0]}")


def _check_backend_switch(out: Path, args: argparse.Namespace) -> None:
    """On --resume, the backend and model must be those of the run (checked before loading one)."""
    if not args.resume or not (out / CONFIG_FILE).is_file():
        return
    old = load_run_config(out)
    old_backend = (old.get("backend") or {}).get("backend")
    old_model = old.get("model")
    new_model = args.model
    if new_model is None and args.backend == "transformers":
        new_model = EMBEDDED_MODEL
    if old_backend and old_backend != args.backend or (new_model is not None and old_model and new_model != old_model):
        raise ValueError(f"--resume: the run in {out} was made with --backend {old_backend} --model {old_model}; this "
                         f"command asks for --backend {args.backend} --model {new_model}. Use the same backend and "
                         "model to continue it, or a new --out folder")


def _resume_command(out: Path, args: argparse.Namespace | None = None) -> str:
    """The command that continues this run: the one given (from the command line), plus --resume."""
    given = getattr(args, "_argv", None) if args is not None else None
    argv = ["culturesim", *redact_argv(list(given))] if given else []
    if not argv:
        return f"culturesim simulate ... --out {out} --resume (the same arguments as before, plus --resume)"
    if "--resume" not in argv:
        argv.append("--resume")
    return " ".join(shlex.quote(a) for a in argv)


def main(args: argparse.Namespace, backend: Backend | None = None) -> int:
    """Run ``culturesim simulate`` from parsed arguments. ``backend``: an already loaded
    backend to use instead of creating one from ``--backend``/``--model`` (not closed here).

    Everything a user can get wrong is checked before the model loads: the arguments, the
    question filters, the --out folder (and its lock), a resume's configuration and backend.
    Returns 0 when every row is answered, 3 when some requests failed (their rows are
    ``error``; --resume asks them again)."""
    shard = parse_shard(args.shard)
    out = Path(args.out)
    check_out_dir(out)
    if out.is_dir() and args.resume and (out / CONFIG_FILE).exists():
        old = load_run_config(out)
    else:
        old = None
    seed = args.seed
    if seed is None and old is not None:
        seed = old["seed"]
    chosen_seed = seed is None
    if seed is None:
        seed = secrets.randbelow(2**31)
    try:
        settings = PlanSettings(
            max_beams=args.max_beams,
            max_memory=args.max_memory,
            do_sample_prob=args.do_sample_prob,
            temperature_range=tuple(args.temperature_range),
            top_p_range=tuple(args.top_p_range),
            shuffle_options=not args.no_shuffle,
            ccsv_critiques=args.ccsv_critiques,
            ccsv_revisions=args.ccsv_revisions,
            ccsv_votes=args.ccsv_votes,
        )
    except ValueError as exc:  # name the option typed, not the field: "--temperature-range (2.0, 1.0) must be ..."
        raise ValueError(re.sub(r"\b(max_beams|max_memory|do_sample_prob|temperature_range|top_p_range|ccsv_\w+)=",
                                lambda m: "--" + m.group(1).replace("_", "-") + " ", str(exc))) from None
    canonical_plan(args.plan)  # validate before loading anything
    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens {args.max_new_tokens} must be >= 1")
    if args.participants < 1:
        raise ValueError(f"--participants {args.participants} must be >= 1")
    _check_selection(args)
    estimator = getattr(args, "estimator", "sampling")
    if estimator != "sampling":
        check_plan(estimator, args.plan)
    questions = load_questions(
        culture=args.culture,
        language=args.language,
        limit=args.questions,
        value_dimensions=args.dimensions,
        topics=args.topics,
        ids=args.question_ids,
        dataset_dir=args.dataset_dir,
    )
    if not questions:
        raise ValueError(f"No question of culture {args.culture} matches --dimensions {args.dimensions} --topics "
                         f"{args.topics} --question-ids {args.question_ids} together; loosen the filters")
    shard_participants(args.participants, shard)
    personas = load_persona_source(getattr(args, "personas", None), questions[0].culture, args.dataset_dir)
    if personas is not None:
        check_persona_plan(parse_plan(args.plan)[0], estimator)
    presentation = None
    if getattr(args, "paraphrases", None):
        if estimator != "sampling":
            raise ValueError(f"--paraphrases works with --estimator sampling only, not {estimator!r}")
        presentation = Presentation(paraphrases=Paraphrases.load(args.paraphrases, questions))
    selection = {
        "culture": args.culture,
        "language": args.language,
        "limit": args.questions,
        "dimensions": args.dimensions,
        "topics": args.topics,
        "ids": args.question_ids,
        "dataset_dir": str(Path(args.dataset_dir).resolve()) if args.dataset_dir else None,
    }
    if backend is None and args.backend == "transformers":
        resolve_model_source(args.model or EMBEDDED_MODEL)  # a wrong --model fails in milliseconds, before torch loads
    kwargs = backend_kwargs(args.backend, args, seed) if backend is None else {}
    lock = RunLock(out)
    try:
        with lock:
            # Check a resume before loading the model (the backend's own keys are compared later).
            partial = build_config(questions, None, args.plan, args.participants, seed, settings, args.max_new_tokens,
                                   shard, selection, presentation, estimator=estimator, personas=personas)
            check_resumable(out, partial, args.resume, skip=BACKEND_KEYS)
            _check_backend_switch(out, args)
            if chosen_seed:
                log.info("no --seed given: using seed %d (recorded in config.json)", seed)
            own = backend is None
            if backend is None:
                backend = get_backend(args.backend, **kwargs)
            run = simulate
            if estimator != "sampling":
                run = functools.partial(simulate_estimator, estimator=estimator)
            try:
                summary = run(
                    out, questions, backend, plan=args.plan, participants=args.participants, seed=seed,
                    settings=settings, max_new_tokens=args.max_new_tokens, shard=shard, resume=args.resume,
                    progress=not args.no_progress, selection=selection,
                    **({"presentation": presentation} if presentation is not None else {}),
                    **({"personas": personas} if personas is not None else {}),
                )
            except BackendUnavailable as exc:
                rows = len(read_rows(out / RESPONSES_FILE)) if (out / RESPONSES_FILE).exists() else 0
                kept = f"the {rows} rows written before are kept; " if rows else ""
                raise BackendUnavailable(f"{exc}; {kept}then continue with: {_resume_command(out, args)}") from None
            finally:
                if own:
                    backend.close()
    finally:
        if lock.created and not holds_anything(out):
            remove_if_only_lock(out)  # a folder this command made and never used (e.g. the model failed to load)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.status_counts.items()))
    print(f"{summary.out_dir}: {summary.rows_total} rows ({summary.rows_written} new) in {summary.elapsed_s:.1f}s; {counts}")
    failed = summary.status_counts.get("error", 0)
    if failed:
        print(f"culturesim: error: {failed} of {summary.rows_total} rows failed (their requests ran out of attempts; "
              f"see the `error` field of those rows). Nothing is lost: ask them again with: {_resume_command(out, args)}",
              file=sys.stderr)
        return EXIT_INCOMPLETE
    return 0
