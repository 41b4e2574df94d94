"""``culturesim ablate``: parse the options, run the plan and language ablations
(``culturesim.simulator.experiments.ablation.run_ablation``) and print each plan's diversity."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from culturesim.simulator.analysis.report import fmt
from culturesim.simulator.cli.argtypes import add_hidden_alias, csv_list, nonnegative_int, positive_int
from culturesim.simulator.experiments.ablation import DEFAULT_PLANS, run_ablation

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default="transformers", help="model backend (default: transformers)")
    parser.add_argument("--model", default=None, help="model id or path (default: embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--culture", default="US", help="ISO alpha-2 culture whose questions are asked (default: US)")
    parser.add_argument("--plans", type=csv_list, default=csv_list(DEFAULT_PLANS), help=f"plans to compare (default {DEFAULT_PLANS})")
    parser.add_argument("--languages", type=csv_list, default=None,
                        help="also run the language ablation in these languages, e.g. zh,en (plan: the last of --plans)")
    parser.add_argument("--questions", type=positive_int, default=None, metavar="N",
                        help="first N questions of the culture (default: all)")
    parser.add_argument("--dimensions", type=csv_list, default=None, help="restrict to these value dimensions")
    parser.add_argument("--wvs-only", action="store_true", help="only the culture's WVS questions")
    parser.add_argument("--max-beams", type=positive_int, default=None,
                        help="config plan: beams in 1..N (default: the paper's 5)")
    parser.add_argument("--shuffle", action="store_true",
                        help="shuffle options per participant in every plan (default: source order; see the module docstring)")
    parser.add_argument("--participants", type=positive_int, default=20,
                        help="simulated participants per plan (default and paper: 20)")
    parser.add_argument("--seed", type=int, default=0,
                        help="run seed shared by every plan, so plans differ only by their modifications (default: 0)")
    parser.add_argument("--max-new-tokens", type=positive_int, default=512,
                        help="generated tokens per answer (default and paper: 512)")
    parser.add_argument("--bootstrap-samples", type=nonnegative_int, default=1000,
                        help="bootstrap replicates for the report's confidence intervals (0: none; default: 1000)")
    add_hidden_alias(parser, "--bootstrap", "bootstrap_samples", type=nonnegative_int)
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for one run folder per plan (and language) and the report in OUT/report")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    report = run_ablation(args.out, args.backend, args.model, args.culture, args.plans, args.languages, args.questions,
                          args.participants, args.seed, args.max_new_tokens, args.dimensions, args.bootstrap_samples,
                          progress=not args.no_progress, max_beams=args.max_beams, wvs_only=args.wvs_only,
                          shuffle=args.shuffle)
    ablation = report.get("ablation") or {}
    for plan, row in (ablation.get("plans") or {}).items():
        print(f"{plan}: distinct answers {fmt(row['distinct_answers_mean'])}, gain over none "
              f"{fmt(row['gain_over_none_pct'], 1)}%; parse rate {fmt(row['parse_rate'])}; rarefied distinct "
              f"{fmt(row['rarefied_distinct_mean'])} (m={fmt(ablation['rarefied_m_mean'], 2)}), gain "
              f"{fmt(row['rarefied_gain_over_none_pct'], 1)}%; questions ahead/behind/level "
              f"{row['questions_ahead']}/{row['questions_behind']}/{row['questions_level']}")
    if report.get("language_ablation"):
        print(json.dumps(report["language_ablation"], indent=1))
    print(f"report: {args.out / 'report' / 'report.html'}")
    return 0
