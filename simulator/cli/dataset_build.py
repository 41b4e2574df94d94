"""``culturesim dataset build``: parse the options, build the Hub-ready dataset folder
(``culturesim.dataset_builder.build.build``) and print the build's counts."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from culturesim.dataset_builder.build import DEFAULT_OUT, DEFAULT_SOURCES, REPO_ROOT, build

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--sources", type=Path, default=DEFAULT_SOURCES, help="raw sources folder (default: ../shared/sources)")
    parser.add_argument("--card-copy", type=Path, default=None,
                        help="also write the card here (default: DATASET_CARD.md when building the committed dataset)")


def main(args: argparse.Namespace) -> int:
    card_copy = args.card_copy
    if card_copy is None and Path(args.out).resolve() == DEFAULT_OUT.resolve():
        card_copy = REPO_ROOT / "DATASET_CARD.md"
    report = build(args.sources, args.out, card_copy)
    print(json.dumps({k: report[k] for k in ("rows", "rows_per_config", "distinct_human_distributions",
                                             "excluded_by_rule", "repaired_by_rule")}, indent=1))
    return 0
