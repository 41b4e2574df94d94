"""``culturesim report RUN_DIR... --out DIR``: parse the options, build the report
(``analysis.report.build_report``, with an optional LLM judge) and print each run's headline."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from culturesim.simulator.analysis.report import build_report, fmt, pct
from culturesim.simulator.backends import get_backend
from culturesim.simulator.cli.argtypes import add_hidden_alias, nonnegative_int

__all__ = ["add_arguments", "main"]



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="run folders written by culturesim simulate (several: compared side by side); a folder "
                             "written by culturesim invariance adds its battery's section")
    parser.add_argument("--out", type=Path, required=True, help="output folder for report.html, report.json, figures/")
    parser.add_argument("--judge-backend", default=None, help="backend for the optional LLM judge of the insensitivity dimensions rules cannot decide (default: off)")
    parser.add_argument("--judge-model", default=None, help="model for the judge backend")
    parser.add_argument("--judge-base-url", default=None, help="server URL for an openai-compatible judge backend")
    parser.add_argument("--bootstrap-samples", type=nonnegative_int, default=1000,
                        help="bootstrap replicates for the confidence intervals (0: none; default: 1000)")
    add_hidden_alias(parser, "--bootstrap", "bootstrap_samples", type=nonnegative_int)
    parser.add_argument("--allow-mixed", action="store_true",
                        help="report runs of different cultures or question sets side by side anyway (refused by "
                             "default; the report then says which runs differ)")


def main(args: argparse.Namespace) -> int:
    judge = None
    if args.judge_backend:
        kwargs: dict[str, Any] = {}
        if args.judge_model:
            kwargs["model"] = args.judge_model
        if args.judge_base_url:
            kwargs["base_url"] = args.judge_base_url
        judge = get_backend(args.judge_backend, **kwargs)
    try:
        report = build_report(args.run_dirs, args.out, judge_backend=judge,
                              bootstrap_samples=args.bootstrap_samples, allow_mixed=args.allow_mixed)
    finally:
        if judge is not None:
            judge.close()
    for run in report["runs"]:
        o, sup = run["overall"], run["support"]
        print(f"{run['label']}: KL {fmt(o['kl_mean'])} [{fmt(o['kl_ci_low'])}, {fmt(o['kl_ci_high'])}], "
              f"JS {fmt(o['js_mean'])}, match rate {fmt(o['match_rate'])}; parse rate {pct(sup.get('parse_rate'))}, "
              f"{len(sup['questions_dropped'])} question(s) dropped, {len(run['warnings'])} warning(s) in the report")
    for b in report.get("invariance") or []:
        pb = b.get("position_bias") or {}
        moves = ", ".join(f"{p} {fmt(m.get('movement_mean'))} vs noise {fmt(m.get('noise_mean'))}" for p, m in b["movement"].items())
        print(f"invariance battery {b['dir']}: position-bias index {fmt(pb.get('index'))}; movement (JS) {moves}")
    print(f"report: {Path(args.out) / 'report.html'}")
    return 0
