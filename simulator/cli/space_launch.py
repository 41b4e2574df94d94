"""``culturesim space [launch]``: parse the options and serve the Space on this machine.

The same app that runs on a Hugging Face Space, with its limits settable from the command
line; the embedded model is loaded in the background at start so the first Run does not
wait for it.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning. On a small CPU
# shared with other processes, spinning threads made SmolLM2 generation 12x slower
# (measured: 48 tokens x 4 participants, 101-131 s spinning vs 8.5 s passive, 2 cores).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["add_arguments", "main"]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    parser.add_argument("--dataset-dir", type=Path, default=None,
                        help="built dataset folder (default: dataset_builder/dataset in the checkout)")
    parser.add_argument("--runs-dir", type=Path, default=None,
                        help="where jobs write their run folders (default: $CULTURESIM_SPACE_RUNS or the temp dir)")
    parser.add_argument("--max-responses", type=int, default=None, help="cap on questions x participants per job")
    parser.add_argument("--job-timeout", type=float, default=None, help="seconds a job may run before it is stopped")
    parser.add_argument("--queue-size", type=int, default=None, help="jobs that may wait in the queue")
    parser.add_argument("--concurrency", type=int, default=None, help="generation jobs running at once")
    parser.add_argument("--no-preload", action="store_true", help="load the embedded model on the first Run instead")


def main(args: argparse.Namespace) -> int:
    # gradio, pandas and matplotlib load only when the Space is launched (and after OMP_WAIT_POLICY)
    from culturesim import space
    from culturesim.space.app import SpaceSettings, build_app, launch, preload

    flags = {  # SpaceLimits field -> (flag, value)
        "max_responses": ("--max-responses", args.max_responses),
        "job_timeout_s": ("--job-timeout", args.job_timeout),
        "queue_max_size": ("--queue-size", args.queue_size),
        "concurrency_limit": ("--concurrency", args.concurrency),
    }
    overrides = {}
    for key, (flag, value) in flags.items():
        if value is None:
            continue
        if value <= 0:
            raise ValueError(f"{flag} {value} must be > 0")
        overrides[key] = value
    if args.dataset_dir is not None and not (Path(args.dataset_dir) / "data").is_dir():
        raise FileNotFoundError(
            f"--dataset-dir {args.dataset_dir} has no data/ folder; build it with `culturesim dataset build`")
    hardware = space.detect_hardware()
    limits = space.SpaceLimits.for_hardware(hardware, **overrides)
    settings = SpaceSettings(dataset_dir=args.dataset_dir, runs_dir=args.runs_dir, limits=limits, hardware=hardware)
    demo = build_app(settings)
    if not args.no_preload:
        preload()
    log.info("culturesim Space on http://%s:%d (%s)", args.host, args.port, hardware.describe())
    launch(demo, host=args.host, port=args.port)
    return 0
