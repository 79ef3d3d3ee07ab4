"""`cnnkit demo` (what `make demo` runs): the chapter's MNIST recipe, end to end."""

from __future__ import annotations

import argparse
import os
import shlex

from cnnkit.cli.commands.train import (
    RECIPE,
    add_train_arguments,
    prefer_passive_openmp,
    run_training,
)
from cnnkit.core.i18n import gettext as _
from cnnkit.core.text import display_width, ljust
from cnnkit.data.registry import NORMALIZE

__all__ = ["playground_command", "recipe_banner", "register"]


def recipe_banner() -> str:
    """The recipe in one sentence, from `TrainConfig`'s defaults."""
    r = RECIPE
    text = _(
        "Training the chapter's SimpleCNN on {dataset}: {epochs} epochs, Adam (lr {lr}), "
        "batch {batch}, inputs normalised with {normalize}."
    )
    return text.format(
        dataset=r.dataset.upper(),
        epochs=r.epochs,
        lr=f"{r.lr:g}",
        batch=r.batch_size,
        normalize=NORMALIZE[r.dataset],
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    from cnnkit.cli.main import HelpFormatter

    r = RECIPE
    parser = subparsers.add_parser(
        "demo",
        help="the main job: fetch MNIST, train the chapter's SimpleCNN, write the report",
        description="Fetch MNIST if needed, train the chapter's SimpleCNN with its recipe "
        f"(Adam lr {r.lr:g}, batch {r.batch_size}, {r.epochs} epochs), then print the final "
        "test accuracy and the path of the HTML report. The same as `cnnkit train` with its "
        "defaults.",
        formatter_class=HelpFormatter,
    )
    add_train_arguments(parser)
    parser.set_defaults(func=demo_cli)


def demo_cli(args: argparse.Namespace) -> int:
    prefer_passive_openmp()
    from cnnkit.data import data_dir, fetch

    # Said before the (possibly slow) fetch: mirrors are tried first, each with a timeout.
    where = data_dir(args.data_dir) / "mnist"
    print(_("MNIST: looking in {where}, fetching it if missing ...").format(where=where))
    got = fetch("mnist", data_dir=args.data_dir, progress=not args.no_progress)
    fetched = _("fetched from {source}").format(source=got.source)
    found = fetched if got.source is not None else _("already there")
    print(_("MNIST: {found}, SHA-256 of every file verified").format(found=found), flush=True)
    print(recipe_banner(), flush=True)
    result, report, code = run_training(
        "demo",
        data_dir=args.data_dir,
        out_dir=args.out,
        threads=args.threads,
        progress=not args.no_progress,
    )
    if code != 0:
        return code
    final = result.history[-1]
    print()
    accuracy = _("final test accuracy:")
    labels = [accuracy, _("run folder:"), _("report:")]
    width = max(display_width(label) for label in labels) + 1
    after = _(" (after {n} epochs)").format(n=final["epoch"])  # its space is the language's
    print(f"{ljust(accuracy, width)}{final['test_acc']:.2%}{after}")
    print(f"{ljust(labels[1], width)}{result.run_dir}")
    if report is not None:
        print(f"{ljust(labels[2], width)}{report}")
    print(_("open the report in a browser; `cnnkit train --help` for more options"))
    if result.run_dir is not None:
        command = playground_command(result.run_dir)
        print(_("open it in the playground: {command}").format(command=command))
    return 0


def playground_command(run_dir: str | os.PathLike[str]) -> str:
    """The shell command that serves a run folder in the playground (`cnnkit serve`)."""
    return f"cnnkit serve {shlex.quote(os.fspath(run_dir))}"
