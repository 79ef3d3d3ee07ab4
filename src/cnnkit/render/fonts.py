"""Japanese figures without tofu: the font is found and used explicitly, never by import.

matplotlib's default font (DejaVu Sans) has no Japanese glyphs: Japanese labels would be drawn
as empty boxes. cnnkit depends on `matplotlib-fontja`, which ships IPAexGothic (about 6 MB, a
pip dependency, so `make demo` on a fresh machine needs no apt and no system font). Its package
is located with `importlib.util.find_spec` and never imported (importing it changes matplotlib's
global rcParams); its font file is registered with matplotlib's font manager the first time a
Japanese figure is saved. A Japanese font installed on the system (IPAexGothic, Noto Sans CJK JP,
...) serves too.

- `figure_text(message)`: a figure's label in the current language, but English when no
  Japanese font is available — labels fall back to English, never to boxes.
- `apply_fonts(fig)`: called by `save_figure` (and the report) before drawing: in Japanese,
  every text of the figure gets the Japanese font first and matplotlib's usual fonts after it
  (per-glyph fallback, for symbols such as ∂ or ⊛).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from cnnkit.core.i18n import get_language, gettext

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "FONT_FAMILIES",
    "apply_fonts",
    "bundled_font_path",
    "figure_text",
    "japanese_font",
    "japanese_figures",
]

# system fonts with Japanese glyphs, tried after the bundled IPAexGothic
FONT_FAMILIES = (
    "IPAexGothic",
    "IPAGothic",
    "Noto Sans CJK JP",
    "Noto Sans JP",
    "Hiragino Sans",
    "Yu Gothic",
    "Meiryo",
    "TakaoGothic",
    "VL Gothic",
)


def bundled_font_path() -> Path | None:
    """IPAexGothic from the `matplotlib-fontja` package (found, not imported), or None."""
    spec = importlib.util.find_spec("matplotlib_fontja")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "fonts" / "ipaexg.ttf"
        if path.is_file():
            return path
    return None


@lru_cache(maxsize=1)
def japanese_font() -> str | None:
    """The family name of a Japanese font matplotlib can use (registered if bundled), or None."""
    from matplotlib import font_manager

    path = bundled_font_path()
    if path is not None:
        font_manager.fontManager.addfont(str(path))
        return font_manager.FontProperties(fname=str(path)).get_name()
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in FONT_FAMILIES if name in installed), None)


def japanese_figures() -> bool:
    """True when figures are drawn in Japanese: the language is ja and a Japanese font exists."""
    return get_language() == "ja" and japanese_font() is not None


def figure_text(message: str) -> str:
    """`message` translated for a figure; English when no Japanese font could draw it."""
    return gettext(message) if japanese_figures() else message


def apply_fonts(fig: Figure) -> None:
    """In Japanese, put the Japanese font first in every text of `fig` (no-op in English)."""
    if not japanese_figures():
        return
    import matplotlib
    from matplotlib import font_manager
    from matplotlib.text import Text

    # only installed families after it: a missing one is logged by every findfont call
    installed = {f.name for f in font_manager.fontManager.ttflist}
    usual = [f for f in matplotlib.rcParams["font.sans-serif"] if f in installed]
    family = [japanese_font(), *usual]
    for text in fig.findobj(Text):
        text.set_fontfamily(family)
