"""``culturesim dataset publish DIR --repo-id ORG/NAME``: upload a built folder in one commit.

The card (README.md with its YAML ``configs``) and the parquet files go up together through
``HfApi.upload_folder``, so the Hub never shows data without its card or a card whose
configs point at missing files.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["check_folder"]


def check_folder(folder: Path) -> None:
    """Refuse to publish something that is not a built dataset folder."""
    if not (folder / "README.md").is_file() or not list((folder / "data").glob("*.parquet")):
        raise FileNotFoundError(
            f"{folder} is not a built dataset folder (needs README.md and data/*.parquet). "
            f"Run `culturesim dataset build --out {folder}` first."
        )
