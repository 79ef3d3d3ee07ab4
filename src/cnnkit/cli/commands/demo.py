"""`cnnkit demo` (what `make demo` runs): the chapter's MNIST recipe, end to end."""

from __future__ import annotations

import argparse
from typing import Any

from cnnkit.cli.commands.train import add_train_arguments, format_epoch, prefer_passive_openmp


def register(subparsers: argparse._SubParsersAction) -> None:
    from cnnkit.cli.main import HelpFormatter

    parser = subparsers.add_parser(
        "demo",
        help="the main job: fetch MNIST, train the chapter's SimpleCNN, write the report",
        description="Fetch MNIST if needed, train the chapter's SimpleCNN with its recipe "
        "(Adam lr 1e-3, batch 64, 3 epochs), then print the final test accuracy and the path "
        "of the HTML report. The same as `cnnkit train` with its defaults.",
        formatter_class=HelpFormatter,
    )
    add_train_arguments(parser)
    parser.set_defaults(func=demo_cli)


def demo_cli(args: argparse.Namespace) -> None:
    prefer_passive_openmp()
    from cnnkit.data import data_dir, fetch
    from cnnkit.training.loop import train

    # Said before the (possibly slow) fetch: mirrors are tried first, each with a timeout.
    print(f"MNIST: looking in {data_dir(args.data_dir) / 'mnist'}, fetching it if missing ...")
    got = fetch("mnist", data_dir=args.data_dir, progress=not args.no_progress)
    where = f"fetched from {got.source}" if got.source is not None else "already there"
    print(f"MNIST: {where}, SHA-256 of every file verified", flush=True)
    print(
        "Training the chapter's SimpleCNN on MNIST: 3 epochs, Adam (lr 0.001), batch 64, "
        "inputs normalised with (0.1307, 0.3081).",
        flush=True,
    )

    def on_epoch(row: dict[str, Any], epochs: int) -> None:
        print(format_epoch(row, epochs), flush=True)

    result = train(
        data_dir=args.data_dir,
        out_dir=args.out,
        threads=args.threads,
        progress=not args.no_progress,
        on_epoch=on_epoch,
    )
    final = result.history[-1]
    print()
    print(f"final test accuracy: {final['test_acc']:.2%} (after {final['epoch']} epochs)")
    print(f"run folder:          {result.run_dir}")
    if result.report is not None:
        print(f"report:              {result.report}")
    print("open the report in a browser; `cnnkit train --help` for more options")
