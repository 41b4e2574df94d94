"""``culturesim dataset publish DIR --repo-id ORG/NAME``: upload a built folder in one commit.

The card (README.md with its YAML ``configs``) and the parquet files go up together through
``HfApi.upload_folder``, so the Hub never shows data without its card or a card whose
configs point at missing files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from culturesim.simulator.hub import PublishError, upload_folder


def check_folder(folder: Path) -> None:
    """Refuse to publish something that is not a built dataset folder."""
    if not (folder / "README.md").is_file() or not list((folder / "data").glob("*.parquet")):
        raise FileNotFoundError(
            f"{folder} is not a built dataset folder (needs README.md and data/*.parquet). "
            f"Run `culturesim dataset build --out {folder}` first."
        )


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
