"""Text laid out by display width: a Japanese character takes two terminal cells, not one.

`str.ljust`/`rjust` and f-string widths count code points, so a column of 設定 and `stride`
would not line up. Every table and aligned listing of cnnkit pads with these instead.
East Asian Wide and Fullwidth characters count 2, combining marks 0, everything else 1
(Ambiguous characters such as × and → count 1, as most terminals draw them). Stdlib only.
"""

from __future__ import annotations

import unicodedata

__all__ = ["display_width", "ljust", "rjust"]


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Terminal cells `text` takes: `display_width("受容野")` is 6, `display_width("rf")` 2."""
    if text.isascii():
        return len(text)
    return sum(_char_width(ch) for ch in text)


def ljust(text: str, width: int) -> str:
    """`text` padded with spaces on the right to `width` display cells."""
    return text + " " * max(0, width - display_width(text))


def rjust(text: str, width: int) -> str:
    """`text` padded with spaces on the left to `width` display cells."""
    return " " * max(0, width - display_width(text)) + text
