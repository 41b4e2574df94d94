"""``culturesim metric publish``: upload the cultural_alignment module as a Gradio Space.

An evaluate metric on the Hub is a Space: its folder (the script ``cultural_alignment.py``, the
sibling ``.py`` files it imports, the metric card with Space front matter, app.py,
requirements.txt) is what ``evaluate.load("ORG/NAME")`` downloads and what the Space runs; the
whole folder is uploaded, so every sibling goes up with the script. The upload itself (token,
one commit, offline message) lives in ``culturesim.simulator.hub.upload_folder``, shared with
the dataset and the app.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["IGNORE", "MODULE_DIR"]

MODULE_DIR = Path(__file__).resolve().parent / "cultural_alignment"
# The package's __init__.py is for the project only: evaluate loads the script, which imports
# its siblings itself.
IGNORE = ["__pycache__", "*.pyc", ".DS_Store", "__init__.py"]
