"""``culturesim dataset publish DIR --repo-id ORG/NAME``: parse the options, check the built
folder (``culturesim.dataset_builder.publish.check_folder``) and upload it in one commit."""

from __future__ import annotations

import argparse
from pathlib import Path

from culturesim.dataset_builder.publish import check_folder
from culturesim.simulator.hub import PublishError, upload_folder

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="the folder written by `culturesim dataset build`")
    parser.add_argument("--repo-id", required=True, help="ORG/NAME of the Hub dataset repository")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--revision", default=None, help="branch to push to (created if missing)")


def main(args: argparse.Namespace) -> int:
    check_folder(args.folder)
    try:
        url = upload_folder(args.folder, args.repo_id, "dataset", private=args.private, revision=args.revision,
                            commit_message="Upload culturesim survey-values dataset")
    except PublishError as exc:
        print(f"culturesim: publish failed: {exc}")
        return 1
    print(url)
    return 0
