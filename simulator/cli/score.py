"""``culturesim score RUN_DIR``: parse the options, score the run (``analysis.scoring.score_run``)
and print its summary; exit 2 when nothing could be scored."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from culturesim.simulator.analysis.scoring import SCORES_FILE, score_run, summary_lines
from culturesim.simulator.cli.argtypes import add_hidden_alias, nonnegative_int

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run folder written by culturesim simulate (or merge)")
    parser.add_argument("--bootstrap-samples", type=nonnegative_int, default=1000,
                        help="bootstrap replicates for the confidence intervals (0: none; default: 1000)")
    add_hidden_alias(parser, "--bootstrap", "bootstrap_samples", type=nonnegative_int)
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling (default: 0)")


def main(args: argparse.Namespace) -> int:
    result = score_run(args.run_dir, bootstrap_samples=args.bootstrap_samples, seed=args.seed)
    print("\n".join(summary_lines(result, args.run_dir / SCORES_FILE)))
    if result["metric"] is None:
        r = result["responses"]
        counts = ", ".join(f"{k} {v}" for k, v in r["status_counts"].items() if v) or "no rows"
        print(f"culturesim: error: {args.run_dir}: nothing to score: no question has a parsed answer ({r['rows']} rows: "
              f"{counts}). Resume an unfinished run with `culturesim simulate ... --resume`, or give a run folder with "
              "answers", file=sys.stderr)
        return 2
    return 0
