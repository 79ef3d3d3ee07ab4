"""An entry of the reproduced chapter, and how cnnkit's answer is compared with the printed one.

`cnnkit.analysis.chapter` computes each entry as a `Draft`; `finish` turns it into an `Entry`,
with a `Difference` for every value the chapter prints differently (`chapter_text.NOTES` says
why).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnkit.analysis.chapter_text import CHAPTER_PRINTED, NOTES
from cnnkit.calc.params import percent_text

__all__ = ["Difference", "Draft", "Entry", "finish", "matches_printed"]


@dataclass(frozen=True)
class Difference:
    """One value where the chapter's printed output and cnnkit disagree."""

    item: str
    chapter: Any
    cnnkit: Any
    note: str


@dataclass(frozen=True)
class Entry:
    """One example or exercise: the question, cnnkit's answer, and any difference."""

    key: str
    section: str
    question: str
    summary: str  # cnnkit's answer in one line
    answer: dict[str, Any]  # the computed values (plain ints, floats, lists)
    differences: tuple[Difference, ...] = ()
    remark: str = ""  # context that is not a difference
    via: str = ""  # which cnnkit function computed it


@dataclass
class Draft:
    """What one entry's function computes, before it is compared with the chapter."""

    question: str
    summary: str
    answer: dict[str, Any]
    via: str
    remark: str = ""
    extra: list[Difference] = field(default_factory=list)


# --------------------------------------------------------------------------- comparison


def _plain(value: Any) -> Any:
    """NumPy -> plain Python; float arrays holding whole numbers become ints (as printed)."""
    if isinstance(value, np.ndarray | np.generic):
        if (
            value.dtype.kind == "f"
            and np.all(np.isfinite(value))
            and np.all(value == np.round(value))
        ):
            return value.astype(np.int64).tolist()
        return value.tolist()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def matches_printed(printed: Any, computed: Any) -> bool:
    """Does the chapter's printed value agree with cnnkit's?

    A printed decimal string matches a float that rounds to it, except a percentage printed as
    exactly 0% or 100% for a value that is neither: that rounding hides the very point made.
    """
    computed = _plain(computed)
    if isinstance(printed, str):
        is_percent = printed.endswith("%")
        digits = printed.rstrip("%")
        if isinstance(computed, str):
            computed = float(computed.rstrip("%"))
        if f"{computed:.{_decimals(digits)}f}" != digits:
            return False
        return not (is_percent and float(digits) in (0.0, 100.0) and computed not in (0.0, 100.0))
    if isinstance(printed, list):
        return (
            isinstance(computed, list)
            and len(printed) == len(computed)
            and all(matches_printed(p, c) for p, c in zip(printed, computed, strict=True))
        )
    return bool(printed == computed)


def finish(key: str, section: str, draft: Draft) -> Entry:
    """The `Entry` of a computed draft: plain values, and a `Difference` per printed mismatch."""
    differences = list(draft.extra)
    for item, printed in CHAPTER_PRINTED.get(key, {}).items():
        computed = draft.answer[item]
        if not matches_printed(printed, computed):
            note = NOTES.get((key, item), "The chapter prints a different value.")
            shown = _plain(computed)
            if isinstance(printed, str) and printed.endswith("%"):
                shown = percent_text(float(computed), 4)  # 99.9988%, not a float's 17 digits
            differences.append(Difference(item, printed, shown, note))
    return Entry(
        key=key,
        section=section,
        question=draft.question,
        summary=draft.summary,
        answer={k: _plain(v) for k, v in draft.answer.items()},
        differences=tuple(differences),
        remark=draft.remark,
        via=draft.via,
    )
