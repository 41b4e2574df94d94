"""``culturesim space publish --repo-id ORG/NAME``: parse the options, prepare the self-contained
Space folder (``culturesim.space.publish.prepare_space_folder``) and upload it in one commit."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from culturesim.simulator.hub import upload_folder
from culturesim.space.publish import HARDWARE, prepare_space_folder

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo-id", required=True, help="the Space to create or update, ORG/NAME")
    parser.add_argument("--private", action="store_true", help="create the Space as private")
    parser.add_argument("--folder", type=Path, default=None,
                        help="where to prepare the upload (default: a temporary folder, removed afterwards)")
    parser.add_argument("--prepare-only", action="store_true", help="prepare --folder and stop (no upload)")
    parser.add_argument("--hardware", choices=sorted(HARDWARE), default="cpu",
                        help="what the Space runs on: picks the torch build in requirements.txt (cpu: the CPU build; "
                             "gpu, zero-gpu: the CUDA build) and suggested_hardware (default: cpu)")


def main(args: argparse.Namespace) -> int:
    if args.prepare_only and args.folder is None:
        raise ValueError("--prepare-only needs --folder (where to leave the prepared Space)")
    temporary = args.folder is None
    folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="culturesim-space-")) / "space"
    try:
        prepare_space_folder(folder, hardware=args.hardware)
        if args.prepare_only:
            print(f"Space folder prepared in {folder}")
            return 0
        url = upload_folder(folder, args.repo_id, repo_type="space", private=args.private, space_sdk="gradio",
                            commit_message="Upload the culturesim Space")
        print(f"Published Space {args.repo_id}: {url}")
        return 0
    finally:
        if temporary:
            shutil.rmtree(folder.parent, ignore_errors=True)
