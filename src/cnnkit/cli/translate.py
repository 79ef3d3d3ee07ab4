"""The command line in the chosen language: `--lang` on every command, help texts translated.

The commands write their help in English (the message ids of the catalog); once the whole
parser is built, `prepare_parser` walks it — every sub-command, every option — adds the
`--lang` option and replaces each description, epilog and help text by its translation.
`parser_messages` walks it the same way to list the texts the catalog must translate (the
completeness test uses it), so a new option cannot go untranslated unnoticed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator

from cnnkit.core.i18n import LANGUAGES, gettext

__all__ = ["LANG_HELP", "parser_messages", "prepare_parser"]

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
