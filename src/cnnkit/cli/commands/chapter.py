"""`cnnkit chapter [SECTION]`: the chapter's examples and exercises, computed by cnnkit."""

from __future__ import annotations

import argparse
from typing import Any

from cnnkit.cli.commands._common import add_json_flag, print_json
from cnnkit.core.i18n import N_, Message, ngettext, translate
from cnnkit.core.i18n import gettext as _
from cnnkit.core.text import display_width, ljust

__all__ = ["SECTION_CHOICES", "register", "render"]

SECTION_CHOICES = ("1.1", "1.2", "1.3", "1.4", "1.6", "ex1", "ex2", "ex3", "ex5")

# the `via` texts of cnnkit.analysis.chapter that hold words (the others are function names),
# marked here for the catalog and translated when printed
_VIA_WORDS = (
    N_("numpy (flatten, norm)"),
    N_("numpy (element-wise product)"),
    N_("cnnkit.calc.arithmetic (shapes), cnnkit.calc.params (counts)"),
)


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
    return translate(value) if isinstance(value, Message) else str(value)


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
            # the library's words are English message ids; the catalog translates them here
            title = f"{section}  {_(SECTIONS[section])}"
            lines += [title, "─" * display_width(title)]
        lines.append(f"[{e.key}] {_(e.question)}")
        lines.append(f"  cnnkit: {translate(e.summary)}")
        if e.via:
            lines.append("  " + _("computed with {via}").format(via=_(e.via)))
        printed, ours = _("chapter prints:"), "cnnkit:"
        width = max(display_width(printed), display_width(ours)) + 1
        for d in e.differences:
            lines.append("  ≠ " + _("chapter differs on {item}:").format(item=_(d.item)))
            lines.append(f"      {ljust(printed, width)}{_value(d.chapter, '      ')}")
            lines.append(f"      {ljust(ours, width)}{_value(d.cnnkit, '      ')}")
            lines.append("      " + _("note: {note}").format(note=_(d.note)))
        if e.remark:
            lines.append("  " + _("note: {note}").format(note=_(e.remark)))
        lines.append("")
    n_diff = sum(len(e.differences) for e in entries)
    lines.append(
        ngettext(
            "{n} examples reproduced; {d} value differs from the chapter's printed output.",
            "{n} examples reproduced; {d} values differ from the chapter's printed output.",
            n_diff,
        ).format(n=len(entries), d=n_diff)
    )
    if only_differences and not shown:
        lines.insert(0, _("no differences in this section."))
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
