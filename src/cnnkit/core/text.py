"""Text laid out by display width: a Japanese character takes two terminal cells, not one.

`str.ljust`/`rjust` and f-string widths count code points, so a column of 設定 and `stride`
would not line up. Every table and aligned listing of cnnkit pads with these instead.
East Asian Wide and Fullwidth characters count 2, combining marks 0, everything else 1
(Ambiguous characters such as × and → count 1, as most terminals draw them). Stdlib only.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["display_width", "ljust", "rjust", "wrap"]


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


# an ASCII word, a run of spaces, or any other single character (a Japanese character may be
# followed by a line break, a word of Latin letters may not)
_TOKEN = re.compile(r"[!-~]+|\s+|.")
# punctuation that must not start a line (kinsoku): kept on the line before, even if it overflows
_NO_LINE_START = set("、。，．）」』】〕：；！？ー・")
_NO_LINE_END = set("（「『【〔")  # nor end one: carried to the next line


def wrap(text: str, width: int) -> list[str]:
    """`text` broken into lines of at most `width` display cells (textwrap counts code points,
    so Japanese help would overflow the terminal). Spaces at a break are dropped."""
    lines: list[str] = []
    line, used = "", 0
    for token in _TOKEN.findall(text):
        size = display_width(token)
        if token.isspace():
            if line:
                line, used = line + " ", used + 1
            continue
        if line and used + size > width and token[0] not in _NO_LINE_START:
            carry = line[-1] if line[-1] in _NO_LINE_END and len(line) > 1 else ""
            lines.append(line[: len(line) - len(carry)].rstrip())
            line, used = carry, display_width(carry)
        line, used = line + token, used + size
    if line.strip():
        lines.append(line.rstrip())
    return lines
