"""The command line in the chosen language: `--lang` on every command, help texts translated.

The commands write their help in English (the message ids of the catalog); once the whole
parser is built, `prepare_parser` walks it — every sub-command, every option — adds the
`--lang` option and replaces each description, epilog and help text by its translation.
`parser_messages` walks it the same way to list the texts the catalog must translate (the
completeness test uses it), so a new option cannot go untranslated unnoticed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator

from cnnkit.core.i18n import LANGUAGES, N_, gettext

__all__ = [
    "ERROR_WORDS",
    "LANG_HELP",
    "N_",
    "configure_streams",
    "parser_messages",
    "prepare_parser",
]


LANG_HELP = (
    "language of help, messages, tables, figures and the report: ja or en (default: "
    "CNNKIT_LANG, else LANGUAGE/LC_ALL/LC_MESSAGES/LANG, else en). JSON and CSV never change"
)


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """`parser` and every sub-command parser below it, each once (aliases share a parser)."""
    seen: set[int] = set()
    todo = [parser]
    while todo:
        p = todo.pop(0)
        if id(p) in seen:
            continue
        seen.add(id(p))
        yield p
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += list(action.choices.values())


def _texts(parser: argparse.ArgumentParser, edit: Callable[[str], str]) -> None:
    """Apply `edit` to every human text of `parser` (not its sub-parsers)."""
    if parser.description:
        parser.description = edit(parser.description)
    if parser.epilog:
        parser.epilog = edit(parser.epilog)
    for action in parser._actions:
        if action.help and action.help != argparse.SUPPRESS:
            action.help = edit(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.help and choice.help != argparse.SUPPRESS:
                    choice.help = edit(choice.help)


def prepare_parser(parser: argparse.ArgumentParser) -> None:
    """Give every command `--lang` and put its texts in the current language."""
    for p in _parsers(parser):
        if "--lang" not in p._option_string_actions:
            # read from argv before parsing (cnnkit.core.i18n); declared so that it is
            # documented, validated, and accepted after any sub-command
            p.add_argument("--lang", choices=LANGUAGES, default=None, help=LANG_HELP)
        _texts(p, gettext)


def parser_messages(parser: argparse.ArgumentParser) -> set[str]:
    """Every text of `parser` that the catalog must translate (call before `prepare_parser`
    in English, or on a freshly built parser)."""
    found: set[str] = {LANG_HELP}

    def keep(text: str) -> str:
        found.add(text)
        return text

    for p in _parsers(parser):
        _texts(p, keep)
    return found


# The templates and words of the library's most common errors (cnnkit.core.checks,
# cnnkit.calc.arithmetic): the library raises them in English with their fields, and the CLI
# words them in the reader's language.
ERROR_WORDS = (
    N_("The {name!r} parameter of {func} must be {allowed}. Got {got!r} instead."),
    N_("The {name!r} parameter must be {allowed}. Got {got!r} instead."),
    N_(
        "Kernel size {k_eff} is larger than the padded input size {padded}"
        " (input {size} + padding {before} + {after}) in {func}."
    ),
    N_(
        "Kernel size {k_eff} is larger than the padded input size {padded} along {axis}"
        " (input {size} + padding {before} + {after}) in {func}."
    ),
    N_(
        "Kernel size {k_eff} (kernel {k}, dilation {d}) is larger than the padded input size"
        " {padded} (input {size} + padding {before} + {after}) in {func}."
    ),
    N_(
        "Kernel size {k_eff} (kernel {k}, dilation {d}) is larger than the padded input size"
        " {padded} along {axis} (input {size} + padding {before} + {after}) in {func}."
    ),
    N_("height"),
    N_("width"),
    N_("the layer"),
    N_("a positive int or pair of ints"),
    N_("a non-negative int or pair of ints"),
    N_("an int or a pair of ints"),
    N_("a positive int"),
    N_("a non-negative int"),
    N_("an int"),
    N_("a bool (True or False)"),
    # cnnkit.cli.commands.arithmetic's option syntax
    N_("an integer"),
    N_("an integer or a pair NxM"),
    N_("N, NxM, T,B,L,R (top, bottom, left, right), 'same', 'valid' or 'full'"),
)


def configure_streams() -> None:
    """Output that cannot fail on the console's encoding, and is UTF-8 wherever it is kept.

    Redirected or piped (a file, a script reading `--json`): UTF-8, whatever the locale says
    (Windows' cp932 cannot encode ·, ⊛ or −, and a learner's script would read mojibake). A
    console keeps its encoding, and a character it cannot show becomes `?` instead of a
    traceback.
    """
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        if encoding == "utf8" or not hasattr(stream, "reconfigure"):
            continue
        try:
            if stream.isatty():
                stream.reconfigure(errors="replace")
            else:
                stream.reconfigure(encoding="utf-8")
        except (OSError, ValueError):  # a closed or detached stream: leave it
            continue
