"""``culturesim merge SHARD_DIRS... --out DIR``: parse the options and join the shards of a run
(``culturesim.simulator.runfolder.merge_runs``, which checks they are parts of the same run)."""

from __future__ import annotations

import argparse
from pathlib import Path

from culturesim.simulator.runfolder import merge_runs

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shards", nargs="+", type=Path, metavar="SHARD_DIR", help="run folders made with --shard K/N")
    parser.add_argument("--out", type=Path, required=True, help="merged run folder (new or empty)")


def main(args: argparse.Namespace) -> int:
    out = merge_runs(args.shards, args.out)
    print(f"merged {len(args.shards)} shards into {out}")
    return 0
