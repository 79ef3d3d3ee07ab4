"""`cnnkit chapter [SECTION]`: the chapter's examples and exercises, computed by cnnkit."""

from __future__ import annotations

import argparse
from typing import Any

from cnnkit.cli.commands._common import add_json_flag, print_json

__all__ = ["SECTION_CHOICES", "register", "render"]

SECTION_CHOICES = ("1.1", "1.2", "1.3", "1.4", "1.6", "ex1", "ex2", "ex3", "ex5")


def _value(value: Any, indent: str) -> str:
    """A matrix on its own lines; anything else inline."""
    matrix = isinstance(value, list) and bool(value) and all(isinstance(r, list) for r in value)
    if matrix and all(not isinstance(v, list | dict) for row in value for v in row):
        width = max(len(f"{v}") for row in value for v in row)
        rows = ["[" + " ".join(f"{v:>{width}}" for v in row) + "]" for row in value]
        return "\n" + "\n".join(indent + "  " + r for r in rows)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render(entries: list[Any], *, only_differences: bool = False) -> str:
    from cnnkit.analysis.chapter import SECTIONS

    lines: list[str] = []
    section = None
    shown = 0
    for e in entries:
        if only_differences and not e.differences:
            continue
        shown += 1
        if e.section != section:
            section = e.section
            title = f"{section}  {SECTIONS[section]}"
            lines += [title, "─" * len(title)]
        lines.append(f"[{e.key}] {e.question}")
        lines.append(f"  cnnkit: {e.summary}")
        if e.via:
            lines.append(f"  computed with {e.via}")
        for d in e.differences:
            lines.append(f"  ≠ chapter differs on {d.item}:")
            lines.append(f"      chapter prints: {_value(d.chapter, '      ')}")
            lines.append(f"      cnnkit:         {_value(d.cnnkit, '      ')}")
            lines.append(f"      note: {d.note}")
        if e.remark:
            lines.append(f"  note: {e.remark}")
        lines.append("")
    n_diff = sum(len(e.differences) for e in entries)
    lines.append(
        f"{len(entries)} examples reproduced; {n_diff} value(s) differ from the chapter's "
        "printed output."
    )
    if only_differences and not shown:
        lines.insert(0, "no differences in this section.")
    return "\n".join(lines)


def _chapter(args: argparse.Namespace) -> int:
    from cnnkit.analysis.chapter import reproduce

    entries = reproduce(args.section)
    if args.json:
        print_json({"section": args.section, "entries": entries})
    else:
        print(render(entries, only_differences=args.differences))
    return 0


def register(subparsers: Any) -> None:
    from cnnkit.cli.main import HelpFormatter

    p = subparsers.add_parser(
        "chapter",
        help="the chapter's examples and exercises, computed by cnnkit",
        description="Reproduces the examples of sections 1.1–1.4 (and SimpleCNN's parameter "
        "count, 1.6) and exercises 1, 2, 3, 5: the question, cnnkit's answer, and a note where "
        "the chapter's printed output differs.\n\n"
        "examples:\n"
        "  cnnkit chapter            every section\n"
        "  cnnkit chapter 1.2        one section\n"
        "  cnnkit chapter --differences\n"
        "  cnnkit chapter ex5 --json",
        formatter_class=HelpFormatter,
    )
    # validated by cnnkit.analysis.chapter.reproduce (a one-line error), listed here for --help
    p.add_argument(
        "section", nargs="?", metavar="SECTION",
        help=f"one of {', '.join(SECTION_CHOICES)} (default: all)",
    )  # fmt: skip
    p.add_argument(
        "--differences", action="store_true", help="only the entries that differ from the chapter"
    )
    add_json_flag(p)
    p.set_defaults(func=_chapter)
