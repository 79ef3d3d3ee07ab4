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
import sys
from collections.abc import Sequence

from cnnkit import __version__
from cnnkit.core.errors import CnnkitError

EXIT_USAGE = 2


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults and keeps the hand-made line breaks of descriptions and epilogs.

    A default of None (an optional value left unset) says nothing, and a flag's default is
    its absence, so neither is printed.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.nargs == 0:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    import cnnkit.cli.commands as commands

    parser = argparse.ArgumentParser(
        prog="cnnkit",
        description="Convolutional neural network fundamentals you can run, measure and look "
        "inside.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cnnkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"cnnkit.cli.commands.{info.name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        code = args.func(args)
    except CnnkitError as e:
        print(f"cnnkit {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"cnnkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `cnnkit ... | head` closed the pipe: not an error. Silence the flush at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return 0 if code is None else int(code)
