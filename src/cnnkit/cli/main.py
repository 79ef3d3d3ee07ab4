"""The `cnnkit` command line: a thin layer over importable functions.

Every module in `cnnkit.cli.commands` (not starting with "_") defines
`register(subparsers)`, which adds its sub-command(s) and sets `func=handler` on them;
a handler takes the parsed namespace and returns an exit code (None means 0).
Command modules import heavy libraries (torch, matplotlib) inside their handlers only.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from cnnkit import __version__
from cnnkit.cli.translate import configure_streams, prepare_parser
from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import (
    chosen_language,
    detect_language,
    error_message,
    install_argparse,
    set_language,
)
from cnnkit.core.i18n import gettext as _
from cnnkit.core.text import display_width, wrap

__all__ = ["EXIT_USAGE", "NEGATIVE_NUMBER", "CnnkitParser", "HelpFormatter", "build_parser", "main"]

EXIT_USAGE = 2


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults and keeps the hand-made line breaks of descriptions and epilogs.

    A default of None (an optional value left unset) says nothing, and a flag's default is
    its absence, so neither is printed; nor is one the help text already states.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        # a help text that states its default itself (a tuple would print as Python's) keeps it
        help_text = action.help or ""
        if action.default is None or action.nargs == 0 or "default:" in help_text:
            return action.help
        if _("default:") in help_text:  # the same, in the chosen language
            return action.help
        text = super()._get_help_string(action)
        suffix = " (default: %(default)s)"  # argparse's own words, not in its catalog
        if text and text.endswith(suffix) and not help_text.endswith(suffix):
            text = text[: -len(suffix)] + _(" (default: %(default)s)")
        return text

    def _split_lines(self, text: str, width: int) -> list[str]:
        if text.isascii():
            return super()._split_lines(text, width)
        # by display width: a Japanese character takes two cells (cnnkit.core.text)
        return wrap(" ".join(text.split()), width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        # descriptions keep their hand-made structure (examples, lists, `term  meaning`
        # columns); prose and any line too wide for the terminal are wrapped by display width
        # (a Japanese character takes two cells), a column line under its own column
        out = []
        for line in _paragraphs(text):
            if display_width(line) <= width:
                out.append(indent + line)
                continue
            match = re.match(r"\s*(?:\S+\s{2,})?", line)
            term = match.group(0) if match else ""
            prefix = " " * display_width(term)
            body = wrap(line[len(term) :], max(20, width - len(prefix)))
            out += [indent + (term if i == 0 else prefix) + part for i, part in enumerate(body)]
        return "\n".join(out)


def _paragraphs(text: str) -> list[str]:
    """The lines of a description, with each run of prose lines (not indented, not a list
    item) joined into one, so that wrapping never leaves a hand-made break mid-sentence
    (Japanese needs no space where its lines join; two English words do)."""
    out: list[str] = []
    prose = False
    for line in text.splitlines():
        is_prose = bool(line.strip()) and not line[:1].isspace() and not line.startswith("- ")
        if is_prose and prose and not out[-1].endswith(":"):
            gap = " " if out[-1][-1:].isascii() and line[:1].isascii() else ""
            out[-1] += gap + line
        else:
            out.append(line)
        prose = is_prose
    return out


# Option values that are numbers, however they are written: -1, -1.5, -.5, -1e308, -1,0, -1x2,
# -inf. argparse's own pattern (-1 and -1.5 only) reads `--range -1e308 1e308` as two options.
NEGATIVE_NUMBER = re.compile(r"^-(?:\.?\d[\d.,xXeE+\-_]*|inf|infinity|nan)$", re.IGNORECASE)


class CnnkitParser(argparse.ArgumentParser):
    """argparse with one-line errors (the message and where to look, never the usage block)
    and negative numbers in any notation accepted as option values. Sub-command parsers
    are made by `add_parser`, which uses the parent's class, so every level behaves so."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_NUMBER

    def error(self, message: str) -> NoReturn:
        line = _("{prog}: error: {message} (see `{prog} --help`)").format(
            prog=self.prog, message=message
        )
        self.exit(EXIT_USAGE, line + "\n")


def build_parser() -> argparse.ArgumentParser:
    import cnnkit.cli.commands as commands

    parser = CnnkitParser(
        prog="cnnkit",
        description="Convolutional neural network fundamentals you can run, measure and look "
        "inside.",  # translated by prepare_parser, like every help text
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cnnkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"cnnkit.cli.commands.{info.name}").register(sub)
    prepare_parser(parser)  # --lang on every command, help texts in the chosen language
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # the language first, so that the parser (and --help) is built in it
    raw = sys.argv[1:] if argv is None else argv
    set_language(detect_language(raw))
    install_argparse()
    configure_streams()  # UTF-8 when redirected, never a UnicodeEncodeError on a console
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    args.chosen_language = chosen_language(raw)  # `cnnkit serve --lang ja`: the page's too
    prog = f"cnnkit {args.command}"  # errors are prefixed with the command, as they always were
    if extra:
        # the sub-command's parser left these: point to its own --help (`cnnkit plot activations`)
        words = [getattr(args, k, None) for k in ("command", "plot", "action")]
        where = " ".join(["cnnkit", *(w for w in words if isinstance(w, str))])
        message = _("unrecognized arguments: %s") % " ".join(extra)
        return _usage_error(prog, message, help_of=where)
    try:
        code = args.func(args)
    except CnnkitError as e:
        return _usage_error(prog, error_message(e), help_hint=False)
    except BrokenPipeError:
        # `cnnkit ... | head` closed the pipe: not an error. Silence the flush at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as e:
        # a file or folder the command could not read or write (permissions, a full disk...)
        where = f"{e.filename!s}: " if e.filename else ""
        return _usage_error(prog, f"{where}{e.strerror or e}", help_hint=False)
    except MemoryError as e:
        detail = f": {e}" if str(e) else ""
        return _usage_error(prog, _("not enough memory for this request") + detail, help_hint=False)
    except RuntimeError as e:
        if not _is_out_of_memory(e):
            raise
        # torch's allocator says so with a RuntimeError: "... you tried to allocate N bytes"
        asked = re.search(r"allocate (\d+) bytes", str(e))
        detail = f": {int(asked.group(1)) / 2**30:,.1f} GiB asked" if asked else ""
        return _usage_error(prog, _("not enough memory for this request") + detail, help_hint=False)
    except KeyboardInterrupt:
        print(_("{prog}: interrupted").format(prog=prog), file=sys.stderr)
        return 130
    return 0 if code is None else int(code)


def _is_out_of_memory(e: RuntimeError) -> bool:
    text = str(e).lower()
    return "can't allocate memory" in text or "out of memory" in text


def _usage_error(
    prog: str, message: str, *, help_hint: bool = True, help_of: str | None = None
) -> int:
    """One line on stderr (newlines in a message folded), exit code 2."""
    hint = _(" (see `{command} --help`)").format(command=help_of or prog) if help_hint else ""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    print(_("{prog}: error: {message}").format(prog=prog, message=line) + hint, file=sys.stderr)
    return EXIT_USAGE
