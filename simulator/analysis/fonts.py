"""The fonts every figure needs, brought by the project rather than found on the machine.

Why: questions and options are drawn in Chinese, Japanese and Arabic, and DejaVu Sans (the only
font matplotlib ships) has none of those glyphs; a fresh machine has no CJK or Arabic fonts
either. So two registry packages that ship the Noto fonts are dependencies of culturesim
(``noto-cjk-sans-otc``: Noto Sans CJK, one collection covering Chinese, Japanese and Korean;
``fontpkg-noto-sans-arabic``: Noto Sans Arabic, both SIL OFL 1.1), and ``use_fonts()`` registers
them with matplotlib and sets a per-glyph fallback list. System Noto fonts (Debian
``fonts-noto-cjk``) are used as well where present.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

import matplotlib
from matplotlib import font_manager

__all__ = ["FALLBACK", "use_fonts"]

#: The families tried for each glyph, in order (matplotlib falls back per glyph).
FALLBACK = ("DejaVu Sans", "Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans Arabic", "Noto Naskh Arabic")


def _bundled_font_files() -> list[Path]:
    """The font files of the two font packages (culturesim dependencies)."""
    files: list[Path] = []
    cjk = import_module("noto_cjk_sans_otc")
    files.append(Path(str(cjk.FONT_PATH)))
    arabic = import_module("fontpkg_noto_sans_arabic")
    files.extend(sorted(Path(arabic.ROOT).glob("files/*.ttf")))
    return files


def _system_font_files() -> list[Path]:
    keys = ("NotoSansCJK", "NotoSansArabic", "NotoNaskhArabic")
    return [Path(p) for p in font_manager.findSystemFonts() if any(k in Path(p).name for k in keys)]


_done = False


def use_fonts() -> tuple[str, ...]:
    """Register the bundled (and any system) Noto fonts once and make matplotlib fall back to them
    per glyph; returns the font families now in ``rcParams["font.family"]``."""
    global _done
    if not _done:
        installed = {f.name for f in font_manager.fontManager.ttflist}
        if not set(FALLBACK[1:4]) <= installed:  # a font cache built before the fonts were there
            for path in [*_bundled_font_files(), *_system_font_files()]:
                try:
                    font_manager.fontManager.addfont(str(path))
                except (OSError, RuntimeError, ValueError):
                    continue  # an unreadable system font: the bundled ones still cover the scripts
        _done = True
    installed = {f.name for f in font_manager.fontManager.ttflist}
    family = tuple(name for name in FALLBACK if name in installed)
    matplotlib.rcParams["font.family"] = list(family)
    return family
