"""``culturesim results add RUN_DIR``, ``culturesim results rescore`` and ``culturesim results show``: the results table.

Only parses the options and calls ``culturesim.simulator.analysis.results_table`` (format and
columns there): ``add`` scores the run with the metric and appends its row, refusing a
duplicate key or another dataset or metric version than the table's; ``rescore`` scores every
row's run folder again (after a metric version change); ``show`` prints it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from culturesim.metrics.cultural_alignment import METRIC_VERSION
from culturesim.simulator.analysis.results_table import DEFAULT_TABLE, KEY, add_run, interval_of, read_table, rescore_table
from culturesim.simulator.cli.argtypes import nonnegative_int

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True,
                                help="add: score a run and append its row; rescore: score every row again with "
                                "this metric version; show: print the table")
    add = sub.add_parser("add", help="score a run folder and append its row")
    add.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder (culturesim simulate --out)")
    add.add_argument("--table", type=Path, default=DEFAULT_TABLE, help=f"results file (default: {DEFAULT_TABLE})")
    add.add_argument("--bootstrap-samples", type=nonnegative_int, default=1000,
                     help="bootstrap replicates for the intervals (default: 1000)")
    add.add_argument("--hardware", default=None, help="the machine that ran it (default: this machine's CPU)")
    rescore = sub.add_parser("rescore", help="score every row's run folder again with this metric version")
    rescore.add_argument("--table", type=Path, default=DEFAULT_TABLE, help=f"results file (default: {DEFAULT_TABLE})")
    rescore.add_argument("--bootstrap-samples", type=nonnegative_int, default=1000,
                         help="bootstrap replicates for the intervals (default: 1000)")
    show = sub.add_parser("show", help="print the table")
    show.add_argument("--table", type=Path, default=DEFAULT_TABLE, help=f"results file (default: {DEFAULT_TABLE})")
    show.add_argument("--score", default="normalised_js",
                      help="the score column to show with its interval (any key of a row's scores; default: normalised_js)")


def _number(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "n/a" if value is None else str(value)


def _show(table: Path, score: str) -> None:
    rows = read_table(table)
    if not rows:
        print(f"{table}: no rows yet (add one with: culturesim results add RUN_DIR --table {table})")
        return
    if not any(score in r.get("scores", {}) for r in rows):
        keys = sorted({k for r in rows for k in r.get("scores", {})})
        raise ValueError(f"--score {score!r} is in no row; the scores hold e.g. {', '.join(keys[:12])}")
    header = [*KEY, score, "interval", "parse_rate", "participants", "questions"]
    lines = []
    for r in rows:
        scores = r.get("scores", {})
        lo, hi = interval_of(scores, score)
        # worth N: None with worth_n_infinite is "as close as the survey itself"; an interval without an
        # upper end reaches infinity
        worth = score.startswith("worth_n")
        value = "∞" if worth and scores.get(score) is None and scores.get("worth_n_infinite") else _number(scores.get(score))
        high = "∞" if worth and hi is None else _number(hi)
        lines.append([str(r.get(k)) for k in KEY] + [value, f"[{_number(lo)}, {high}]" if lo is not None else "",
                     _number(r.get("parse_rate")), str(r.get("participants")), str(r.get("questions"))])
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    for line in [header, *lines]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())


def main(args: argparse.Namespace) -> int:
    if args.action == "show":
        _show(args.table, args.score)
        return 0
    if args.action == "rescore":
        rows = rescore_table(args.table, bootstrap_samples=args.bootstrap_samples, say=lambda line: print(line, flush=True))
        print(f"{args.table}: {len(rows)} rows rescored with metric {METRIC_VERSION}")
        return 0
    if not args.run_dir.is_dir():
        raise ValueError(f"RUN_DIR {args.run_dir} is not a folder; give a run folder written by culturesim simulate")
    row = add_run(args.run_dir, args.table, bootstrap_samples=args.bootstrap_samples, hardware=args.hardware)
    print(f"added to {args.table}: " + ", ".join(f"{k} {row[k]}" for k in KEY))
    if not row["scores"]:
        print(f"warning: no question of {args.run_dir} got a valid answer (parse rate {_number(row['parse_rate'])}): "
              "the row has no scores")
    return 0
