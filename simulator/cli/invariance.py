"""``culturesim invariance``: parse the options, run the battery
(``culturesim.simulator.experiments.invariance.run_battery``), analyse its folders
(``culturesim.simulator.analysis.invariance``) and print the summary."""

from __future__ import annotations

import argparse
from pathlib import Path

from culturesim.simulator.analysis.invariance import (
    LABEL_STYLES,
    PERTURBATIONS,
    RESULT_FILE,
    analyse,
    plan_conditions,
    summary_lines,
    write_result,
)
from culturesim.simulator.backends import available_backends, get_backend
from culturesim.simulator.cli.argtypes import csv_list
from culturesim.simulator.cli.backend_args import add_model_arguments, backend_kwargs
from culturesim.simulator.experiments.invariance import run_battery
from culturesim.simulator.participants import PlanSettings, canonical_plan
from culturesim.simulator.presentation import Paraphrases
from culturesim.simulator.questions import load_questions

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = PlanSettings()
    g = parser.add_argument_group("model")
    g.add_argument("--backend", default="transformers", choices=available_backends(), help="model backend (default: transformers)")
    add_model_arguments(g)
    g.add_argument("--max-new-tokens", type=int, default=512, help="generated tokens per answer (paper: 512)")
    g = parser.add_argument_group("questions")
    g.add_argument("--culture", default="US", help="ISO alpha-2 culture of the questions (default: US)")
    g.add_argument("--language", default=None, help="question language (default: the culture's native language)")
    g.add_argument("--questions", type=int, default=None, metavar="N", help="N questions spread over sources and topics")
    g.add_argument("--question-ids", type=csv_list, default=None, help="question ids, comma separated")
    g.add_argument("--dataset-dir", type=Path, default=None, help="built dataset folder (default: dataset_builder/dataset)")
    g = parser.add_argument_group("battery")
    g.add_argument("--perturbations", type=csv_list, default=["order", "labels", "reverse"],
                   help=f"comma separated, from {','.join(PERTURBATIONS)} (default: order,labels,reverse; "
                        "paraphrase needs --paraphrases)")
    g.add_argument("--orders", type=int, default=2, help="order perturbation: runs with per-participant random orders (default 2)")
    g.add_argument("--label-styles", type=csv_list, default=list(LABEL_STYLES), help="labels perturbation: letters,text (default both)")
    g.add_argument("--paraphrases", type=Path, default=None, help="folder written by `culturesim dataset expand`")
    g.add_argument("--plan", default="none", help="diversity plan of every run (default: none, the plain template)")
    g.add_argument("--participants", type=int, default=20, help="simulated participants per run (default 20)")
    g.add_argument("--max-beams", type=int, default=d.max_beams, help=f"config plan: num_beams in 1..max (default {d.max_beams})")
    g.add_argument("--seed", type=int, default=0, help="seed of the first run; run i uses seed + i (default 0)")
    g.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates for intervals and the reference (default 1000)")
    g.add_argument("--out", type=Path, required=True, help="folder for the runs and invariance.json")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")


def main(args: argparse.Namespace) -> int:
    canonical_plan(args.plan)
    if args.participants < 1:
        raise ValueError(f"--participants {args.participants} must be >= 1")
    conditions = plan_conditions(args.perturbations, args.orders, args.label_styles)
    questions = load_questions(culture=args.culture, language=args.language, limit=args.questions,
                               ids=args.question_ids, dataset_dir=args.dataset_dir)
    paraphrases = Paraphrases.load(args.paraphrases, questions) if args.paraphrases else None
    if "paraphrase" in args.perturbations and paraphrases is None:
        raise ValueError("--perturbations paraphrase needs --paraphrases DIR (written by `culturesim dataset expand`)")
    backend = get_backend(args.backend, **backend_kwargs(args.backend, args, args.seed))
    try:
        run_battery(args.out, questions, backend, conditions, plan=args.plan, participants=args.participants,
                    seed=args.seed, settings=PlanSettings(max_beams=args.max_beams), max_new_tokens=args.max_new_tokens,
                    paraphrases=paraphrases, progress=not args.no_progress,
                    selection={"culture": args.culture, "language": args.language, "limit": args.questions})
        model = getattr(backend, "model_id", None)
    finally:
        backend.close()
    result = analyse(args.out, conditions, questions, bootstrap=args.bootstrap, seed=args.seed, model=model)
    write_result(Path(args.out), result)
    print("\n".join(summary_lines(result)))
    print(f"written: {Path(args.out) / RESULT_FILE}")
    return 0
