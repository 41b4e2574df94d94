"""``culturesim study SPEC``: run (or continue) a study of models x plans x estimators x cultures.

Only parses the options and calls ``culturesim.simulator.experiments.study.run_study``; the spec's
format is that module's docstring. Long: start it in the background and start it again after a
kill; finished cells are skipped and unfinished ones resumed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from culturesim.simulator.cli.argtypes import csv_list
from culturesim.simulator.experiments.study import load_spec, run_study

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", type=Path, help="study spec, YAML or JSON (e.g. benchmarks/study.yaml)")
    parser.add_argument("--plan-only", action="store_true",
                        help="select the items and print every cell's requests and token counts; run nothing")
    parser.add_argument("--estimate", action="store_true",
                        help="also load and time each model on two batches and print every cell's time; run nothing")
    parser.add_argument("--models", type=csv_list, default=None, help="only these models of the spec (names, comma separated)")
    parser.add_argument("--cells", type=csv_list, default=None,
                        help="only the cells matching these glob patterns, in this order (comma separated), e.g. "
                             "'qwen*/sampling-none/US-en,*/logprob-none/*'")
    parser.add_argument("--progress", action="store_true", help="a progress bar per cell (default: one line per cell)")


def main(args: argparse.Namespace) -> int:
    if not args.spec.is_file():
        raise ValueError(f"study spec {args.spec} does not exist; give a YAML or JSON file such as benchmarks/study.yaml")
    spec = load_spec(args.spec)
    cells = run_study(spec, plan_only=args.plan_only, progress=args.progress,
                      say=lambda line: print(line, flush=True), models=args.models, estimate_only=args.estimate,
                      only=args.cells)
    print(f"study {spec.name}: {len(cells)} cells" + ("" if args.plan_only or args.estimate else " done")
          + f"; folder {spec.out}"
          + (f"; table {spec.table}" if spec.table else ""))
    return 0
