"""``culturesim metric publish``: parse the options and upload the cultural_alignment evaluate
module (``culturesim.metrics.publish.MODULE_DIR``) as a Gradio Space, one line on failure."""

from __future__ import annotations

import argparse
import sys

from culturesim.metrics.publish import IGNORE, MODULE_DIR
from culturesim.simulator.hub import PublishError, upload_folder

__all__ = ["add_arguments", "main"]


def _is_network_error(exc: BaseException) -> bool:
    root = type(exc).__module__.split(".")[0]
    return root.startswith(("httpx", "httpcore")) or root in ("requests", "urllib3")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo-id", required=True, metavar="ORG/NAME", help="the Space to create or update")
    parser.add_argument("--private", action="store_true", help="create the Space private")


def main(args: argparse.Namespace) -> int:
    try:
        url = upload_folder(
            MODULE_DIR,
            args.repo_id,
            repo_type="space",
            private=args.private,
            space_sdk="gradio",
            commit_message="Upload the cultural_alignment evaluate metric with culturesim",
            ignore_patterns=IGNORE,
        )
    except PublishError as exc:
        print(f"culturesim metric publish: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - huggingface_hub's httpx transport errors are not OSError
        if not _is_network_error(exc):
            raise
        print(
            f"culturesim metric publish: could not reach the Hugging Face Hub to publish Space {args.repo_id!r} "
            f"({type(exc).__name__}: {exc}). Check the network (or HF_ENDPOINT) and try again.",
            file=sys.stderr,
        )
        return 1
    print(f"Published the metric to https://huggingface.co/spaces/{args.repo_id} ({url})")
    print(f'Load it with: evaluate.load("{args.repo_id}")')
    return 0
