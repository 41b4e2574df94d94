"""``culturesim dataset expand``: parse the options, rephrase each question with the chosen
backend (``culturesim.dataset_builder.expand.expand``, reviewed in code) and print what was kept."""

from __future__ import annotations

import argparse
from pathlib import Path

from culturesim.dataset_builder.expand import CONFIG_NAME, REVIEW_FILE, expand
from culturesim.simulator.backends import available_backends, get_backend
from culturesim.simulator.cli.argtypes import csv_list
from culturesim.simulator.cli.backend_args import add_model_arguments, backend_kwargs
from culturesim.simulator.questions import load_questions

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--backend", default="transformers", choices=available_backends(), help="backend that rephrases (default: transformers)")
    add_model_arguments(g)
    g.add_argument("--max-new-tokens", type=int, default=128, help="tokens per rephrasing (default 128)")
    g.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    g.add_argument("--judge-backend", default=None, choices=available_backends(), help="optional judge of each accepted variant")
    g.add_argument("--judge-model", default=None, help="judge model id or path")
    g.add_argument("--judge-base-url", default=None, help="judge server URL (openai backend)")
    g = parser.add_argument_group("questions")
    g.add_argument("--culture", default="US", help="ISO alpha-2 culture of the questions (default: US)")
    g.add_argument("--language", default=None, help="question language (default: the culture's native language)")
    g.add_argument("--questions", type=int, default=None, metavar="N", help="N questions spread over sources and topics (default: all)")
    g.add_argument("--question-ids", type=csv_list, default=None, help="question ids, comma separated")
    g.add_argument("--dataset-dir", type=Path, default=None, help="built dataset folder (default: dataset_builder/dataset)")
    g = parser.add_argument_group("output")
    g.add_argument("--variants", type=int, default=3, help="rephrasings asked per question (default 3)")
    g.add_argument("--seed", type=int, default=0, help="seed of the per-request sampling seeds (default 0)")
    g.add_argument("--out", type=Path, required=True, help="folder: cache, review log, paraphrases config (reused on rerun)")


def main(args: argparse.Namespace) -> int:
    questions = load_questions(culture=args.culture, language=args.language, limit=args.questions,
                               ids=args.question_ids, dataset_dir=args.dataset_dir)
    backend = get_backend(args.backend, **backend_kwargs(args.backend, args, args.seed))
    judge = None
    try:
        if args.judge_backend:
            judge_args = argparse.Namespace(**{**vars(args), "model": args.judge_model, "base_url": args.judge_base_url})
            judge = get_backend(args.judge_backend, **backend_kwargs(args.judge_backend, judge_args, args.seed))
        summary = expand(args.out, questions, backend, variants=args.variants, seed=args.seed,
                         temperature=args.temperature, max_new_tokens=args.max_new_tokens, judge_backend=judge)
    finally:
        backend.close()
        if judge is not None:
            judge.close()
    print(f"{args.out}: {summary['accepted']} of {summary['candidates']} variants accepted "
          f"({summary['questions_with_variants']} of {summary['questions']} questions), {summary['asked']} asked, "
          f"{summary['from_cache']} from cache; rejected by check: "
          + (", ".join(f"{k} {v}" for k, v in summary["rejected_by_check"].items()) or "none"))
    if summary["accepted"]:
        print(f"load it with: datasets.load_dataset({str(args.out)!r}, {CONFIG_NAME!r}, split='test')")
    else:
        print(f"no variant accepted: the reasons are in {Path(args.out) / REVIEW_FILE}")
    return 0
