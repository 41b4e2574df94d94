"""Uploading a prepared folder (dataset, metric module or Space) to the Hugging Face Hub.

One function for all three, so the token handling, the single-commit upload and the
offline error message are written once. The token comes from the environment (``HF_TOKEN``)
or the huggingface_hub login cache; it is never printed or written anywhere.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

REPO_TYPES = ("dataset", "space", "model")


class PublishError(RuntimeError):
    """Publishing failed for a reason the user can fix (no token, no network, bad repo id)."""


def _token() -> str | None:
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:  # noqa: BLE001 - no cached login is the common case
        return None


def upload_folder(
    folder: str | Path,
    repo_id: str,
    repo_type: str,
    private: bool = False,
    revision: str | None = None,
    space_sdk: str | None = None,
    commit_message: str | None = None,
    ignore_patterns: list[str] | None = None,
) -> str:
    """Create the repo if needed and upload ``folder`` in one commit; return the commit URL."""
    folder = Path(folder)
    if repo_type not in REPO_TYPES:
        raise ValueError(f"repo_type={repo_type!r}; choose one of {', '.join(REPO_TYPES)}")
    if not folder.is_dir():
        raise FileNotFoundError(f"Nothing to publish: {folder} is not a folder. Build it first.")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"repo_id={repo_id!r} must look like ORG/NAME, e.g. culturesim/survey-values")
    token = _token()
    if not token:
        raise PublishError(
            "No Hugging Face token found. Set HF_TOKEN in the environment (a write token from "
            "https://huggingface.co/settings/tokens) or run `hf auth login`, then publish again."
        )
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, space_sdk=space_sdk)
        if revision:
            api.create_branch(repo_id, repo_type=repo_type, branch=revision, exist_ok=True)
        info = api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type=repo_type,
            revision=revision,
            commit_message=commit_message or f"Upload {folder.name} with culturesim",
            ignore_patterns=ignore_patterns or ["__pycache__", "*.pyc", ".DS_Store"],
        )
    except HfHubHTTPError as exc:
        raise PublishError(f"The Hub refused the upload to {repo_type} {repo_id!r}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - DNS failure, refused connection, timeout (httpx/requests/OSError)
        raise PublishError(
            f"Could not reach the Hugging Face Hub to publish {repo_type} {repo_id!r} ({type(exc).__name__}: {exc}). "
            "Check the network (or HF_ENDPOINT) and try again."
        ) from exc
    url = getattr(info, "commit_url", None) or str(info)
    log.info("published %s %s: %s", repo_type, repo_id, url)
    return url
