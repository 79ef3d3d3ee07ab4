"""`cnnkit train`: the training loop (`cnnkit.training.loop.train`) from the command line.

Options left out are None, so `train()` fills them from `TrainConfig` (a new run) or from the
run itself (`--resume`), which refuses an explicit value that contradicts the run. The HTML
report is written here (`write_report`), after training: the training layer sits below
rendering.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnkit.cli.commands._common import add_device_flag, positive_int
from cnnkit.core.i18n import gettext as _
from cnnkit.core.i18n import translate
from cnnkit.core.text import display_width, ljust
from cnnkit.data.registry import DATASETS
from cnnkit.models.device import PRECISIONS
from cnnkit.models.registry import ENGINES
from cnnkit.training.config import (
    DEFAULT_OUT_DIR,
    MAX_EPOCHS,
    RECIPES,
    SEED_LIMIT,
    TrainConfig,
    new_config,
)

if TYPE_CHECKING:
    from cnnkit.training.loop import TrainResult
    from cnnkit.training.runs import RunPlan

__all__ = [
    "add_recipe_arguments",
    "add_run_arguments",
    "add_train_arguments",
    "format_epoch",
    "register",
    "train_cli",
    "write_report",
]

RECIPE = TrainConfig()  # the chapter's recipe: every default shown below comes from it
EXIT_DIVERGED = 1  # the run failed (2 is for refused input)
ON_RESUME = "on --resume: the run's"


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    from cnnkit.cli.main import HelpFormatter

    parser = subparsers.add_parser(
        "train",
        help="train a model (the chapter's MNIST recipe by default)",
        description="Train a registry model (see `cnnkit models`) with the chapter's recipe: "
        "Adam, cross-entropy, shuffled batches. Each run writes RUN_DIR = OUT/NAME with "
        "config.json, metrics.jsonl/.csv, checkpoint.pt (every epoch) and report.html. "
        "A run whose loss becomes NaN or inf stops (exit 1), keeps its last good checkpoint "
        "and is marked diverged.",
        epilog="examples:\n"
        "  cnnkit train                                # the chapter's recipe on MNIST\n"
        "  cnnkit train --limit 2000 --epochs 1        # a quick run\n"
        "  cnnkit train --resume runs/NAME --epochs 5  # continue a run to epoch 5\n"
        "  cnnkit train --engine numpy                 # the same loop in pure NumPy\n"
        "  cnnkit train --recipe fast                  # 99% on MNIST in one epoch\n"
        "  cnnkit train --dataset photos/              # your images, a subfolder per class\n"
        "  cnnkit train --nproc 2                      # 2 processes (torchrun, DDP)",
        formatter_class=HelpFormatter,
    )
    add_recipe_arguments(parser)
    add_run_arguments(parser)
    add_image_folder_arguments(parser)
    add_train_arguments(parser)
    parser.add_argument(
        "--nproc",
        type=positive_int,
        help="train on N local processes: launches torchrun (DistributedDataParallel, gloo on "
        "CPU); the global batch stays --batch-size (default: one process)",
    )
    parser.set_defaults(func=train_cli, parser=parser)


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The recipe's settings: what a run is (resume refuses any that contradicts the run)."""
    r = RECIPE
    parser.add_argument(
        "--dataset",
        metavar="NAME|FOLDER",
        help=f"{', '.join(DATASETS)}, or a folder of your images with one subfolder per class "
        f"(docs/own_data.md) (default: {r.dataset}; {ON_RESUME})",
    )
    parser.add_argument("--model", help=f"registry model name (default: {r.model}; {ON_RESUME})")
    parser.add_argument(
        "--epochs",
        type=positive_int,
        help=f"train up to this epoch, at most {MAX_EPOCHS} (default: {r.epochs}; on --resume: "
        "the run's target, and a higher one continues the run)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        help=f"training batch size (default: {r.batch_size}; {ON_RESUME})",
    )
    parser.add_argument(
        "--lr", type=positive_float, help=f"Adam learning rate (default: {r.lr:g}; {ON_RESUME})"
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        help=f"random seed, 0 to {SEED_LIMIT - 1} (default: {r.seed}; {ON_RESUME})",
    )
    parser.add_argument(
        "--engine", choices=ENGINES, help=f"compute engine (default: {r.engine}; {ON_RESUME})"
    )
    fast = RECIPES["fast"].defaults
    parser.add_argument(
        "--recipe",
        choices=list(RECIPES),
        help=f"chapter: section 1.6's recipe; fast: model {fast['model']}, OneCycle Adam lr "
        f"{fast['lr']:g} betas {RECIPES['fast'].betas}, label smoothing "
        f"{RECIPES['fast'].label_smoothing}, batch {fast['batch_size']}, channels-last, "
        f"{fast['epochs']} epoch, precision {fast['precision']}; each option given still wins "
        f"(default: {r.recipe}; {ON_RESUME})",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="autocast precision with fp32 master weights; auto: bf16 only on a CUDA device "
        "with bf16 or a CPU with avx512_bf16/AMX (confirmed by timing one step), else fp32 "
        f"(default: {r.precision}, the fast recipe's: auto; {ON_RESUME})",
    )
    add_device_flag(parser, default=None)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the run goes and how much of it to do."""
    parser.add_argument("--name", help="run folder name; DATASET-MODEL-TIMESTAMP when not given")
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue this run from its last completed epoch, with its own settings (an "
        "option that contradicts them is refused)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="train one batch, evaluate one, write no run folder (the dataset is fetched if "
        "missing)",
    )
    parser.add_argument(
        "--limit", type=positive_int, help="use only the first N training images (default: all)"
    )
    parser.add_argument(
        "--test-limit",
        type=positive_int,
        help="evaluate on the first N test images only (default: all)",
    )
    parser.add_argument(
        "--no-report",
        dest="report",
        action="store_const",
        const=False,
        help="skip report.html (kept by --resume)",
    )


def add_image_folder_arguments(parser: argparse.ArgumentParser) -> None:
    """Options for --dataset FOLDER (cnnkit.data.folder); kept by --resume."""
    r = RECIPE
    parser.add_argument(
        "--image-size",
        metavar="N|HxW",
        help="resize every image to this size (default: the folder's median height and width)",
    )
    parser.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        help="1 (grayscale) or 3 (RGB) (default: 1 when every image is grayscale, else 3)",
    )
    parser.add_argument(
        "--test-fraction",
        type=positive_float,
        help="the share of each class held out for testing, seeded by --seed, when the folder "
        f"has no train/ and test/ subfolders (default: {r.test_fraction})",
    )
    parser.add_argument(
        "--on-bad-image",
        choices=("skip", "fail"),
        help="an image that cannot be decoded: skip it (named in a warning) or stop "
        f"(default: {r.on_bad_image})",
    )


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared with `cnnkit demo`: where data and runs go, threads, progress."""
    parser.add_argument(
        "--data-dir",
        default=None,
        help="the data dir; when not given: $CNNKIT_DATA, else ~/.cache/cnnkit "
        "(MNIST is fetched there on first use)",
    )
    parser.add_argument(
        "--out", help=f"folder that holds the run folders (default: {DEFAULT_OUT_DIR})"
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        help="threads for torch and for NumPy's BLAS, at most 4 per CPU; when not given, the "
        "cores this process may use less those busy (1-minute load average), at least 1 (on "
        "--resume: the run's, as the count changes the exact results)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def prefer_passive_openmp() -> None:
    """Let idle OpenMP threads sleep instead of spinning (unless the user chose otherwise).

    Must run before torch is imported. On a busy machine, spinning threads fight the other
    processes for the cores: measured here, a training step took 3× longer with 2 spinning
    threads than with 2 sleeping ones. The arithmetic, hence every result, is unchanged.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def format_epoch(row: dict[str, Any], epochs: int) -> str:
    text = _(
        "epoch {epoch}/{epochs}  train loss {train_loss} acc {train_acc}  "
        "test loss {test_loss} acc {test_acc}  ({seconds} s)"
    )
    return text.format(
        epoch=row["epoch"],
        epochs=epochs,
        train_loss=f"{row['train_loss']:.4f}",
        train_acc=f"{row['train_acc']:.2%}",
        test_loss=f"{row['test_loss']:.4f}",
        test_acc=f"{row['test_acc']:.2%}",
        seconds=f"{row['seconds']:.1f}",
    )


def print_start(plan: RunPlan) -> None:
    """The device, precision and threads in use; where a resumed run starts."""
    from cnnkit.models.device import describe_threads

    c = plan.config
    line = _("{recipe} recipe, model {model}: device {device}, precision {precision}, {threads}")
    threads = translate(describe_threads(c.threads or 1))
    print(
        line.format(
            recipe=c.recipe, model=c.model, device=c.device, precision=c.precision, threads=threads
        ),
        flush=True,
    )
    if not plan.resumed:
        return
    if plan.start_epoch == 0:
        text = _("restarting {run} from the start: it completed no epoch (no checkpoint)")
        print(text.format(run=plan.run_dir), flush=True)
    else:
        text = _("resuming {run} from epoch {start} (its last completed), up to epoch {epochs}")
        print(
            text.format(run=plan.run_dir, start=plan.start_epoch, epochs=plan.config.epochs),
            flush=True,
        )


def print_epoch(row: dict[str, Any], epochs: int) -> None:
    print(format_epoch(row, epochs), flush=True)


def write_report(result: TrainResult) -> Path | None:
    """report.html for a run (`cnnkit.render.report.build_report`), from its last good
    checkpoint; None when the run asked for none, completed no epoch, or its model has no
    4-D first weight to show."""
    if not result.config.get("report", True) or result.checkpoint is None:
        return None
    if result.initial_conv1_weight is None or result.test_images is None:
        return None
    from cnnkit.models.checkpoint import load_checkpoint
    from cnnkit.render.report import build_report

    assert result.run_dir is not None and result.test_labels is not None
    return build_report(
        result.run_dir,
        model=load_checkpoint(result.checkpoint).model,
        initial_conv1_weight=result.initial_conv1_weight,
        test_images=result.test_images,
        test_labels=result.test_labels,
        normalize=result.config["normalize"],
        history=result.history,
        class_names=result.config["classes"],
    )


def run_training(command: str, **options: Any) -> tuple[TrainResult, Path | None, int]:
    """train(**options) with the CLI's callbacks, then the report: (result, report, exit
    code). A diverged run still gets its report (of the last good epoch) and exits 1."""
    from cnnkit.training.loop import TrainingDiverged, train

    try:
        result = train(on_start=print_start, on_epoch=print_epoch, **options)
    except TrainingDiverged as e:
        report = write_report(e.result)
        from cnnkit.core.i18n import error_message

        line = _("{prog}: error: {message}").format(
            prog=f"cnnkit {command}", message=error_message(e)
        )
        print(line, file=sys.stderr)
        return e.result, report, EXIT_DIVERGED
    if result.run_dir is None:
        return result, None, 0
    return result, write_report(result), 0


def _forwarded_argv(args: argparse.Namespace) -> list[str]:
    """The options of `args` as a command line for the ranks (all but --nproc)."""
    argv = ["train"]
    for action in args.parser._actions:  # argparse keeps its actions here
        if not action.option_strings or action.dest in ("help", "nproc"):
            continue
        value = getattr(args, action.dest, None)
        if value is None or value == action.default:
            continue
        if action.nargs == 0:  # store_true / store_const
            argv.append(action.option_strings[-1])
        else:
            argv += [action.option_strings[-1], str(value)]
    return argv


def launch_nproc(args: argparse.Namespace) -> int:
    """`--nproc N`: this command again on N processes under torchrun, on 127.0.0.1."""
    import subprocess

    from cnnkit.training.distributed import free_port, launch_command
    from cnnkit.training.runs import default_run_name, plan_run

    # refused input is refused here, once, before any process starts
    settings = {f.name for f in dataclasses.fields(TrainConfig)} - {"report"}
    given = {k: getattr(args, k) for k in settings if getattr(args, k, None) is not None}
    if args.name is None and args.resume is None and not args.dry_run:
        args.name = default_run_name(new_config(given))  # known here, for the message
    plan_run(given, out_dir=args.out, run_name=args.name, resume=args.resume, dry_run=args.dry_run)
    command = launch_command(sys.executable, args.nproc, _forwarded_argv(args), free_port())
    code = subprocess.run(command, check=False).returncode
    if code == 0:
        return 0
    run_dir = Path(args.resume) if args.resume else Path(args.out or DEFAULT_OUT_DIR) / args.name
    if run_dir.is_file():
        run_dir = run_dir.parent
    checkpoint = run_dir / "checkpoint.pt"
    kept = (
        _(
            "its last good checkpoint stays: {checkpoint}; continue with "
            "`cnnkit train --nproc {nproc} --resume {run_dir}`"
        ).format(checkpoint=checkpoint, nproc=args.nproc, run_dir=run_dir)
        if checkpoint.is_file()
        else _("no epoch completed, so no checkpoint was written")
    )
    stopped = _(
        "the {nproc}-process run stopped (torchrun exit status {code}; the failing process is "
        "named above); {kept}"
    ).format(nproc=args.nproc, code=code, kept=kept)
    print(
        _("{prog}: error: {message}").format(prog="cnnkit train", message=stopped), file=sys.stderr
    )
    return EXIT_DIVERGED


def _print_image_folder(config: dict[str, Any]) -> None:
    """What an image folder became: classes, sizes, skipped files (warnings on stderr)."""
    facts = config.get("image_folder")
    if not facts:
        return
    h, w = facts["image_size"]
    mh, mw = facts["median_size"]
    line = _(
        "data:       {dataset}: {k} classes ({classes}), {train} train / {test} test images "
        "({split} split), resized to {h}x{w} (median size {mh}x{mw}), {c} channel(s)"
    )
    split = _("stratified") if facts["split"] == "stratified" else _("folders")
    print(
        line.format(
            dataset=config["dataset"],
            k=len(config["classes"]),
            classes=", ".join(config["classes"]),
            train=config["train_size"],
            test=config["test_size"],
            split=split,
            h=h,
            w=w,
            mh=mh,
            mw=mw,
            c=facts["channels"],
        )  # fmt: skip
    )
    for bad in facts["skipped"]:
        warning = _("warning: skipped an unreadable image: {reason}")
        print(warning.format(reason=translate(bad["reason"])), file=sys.stderr)
    if facts["skipped"]:
        print(
            _("warning: {n} image(s) skipped (--on-bad-image fail refuses them instead)").format(
                n=len(facts["skipped"])
            ),
            file=sys.stderr,
        )


def train_cli(args: argparse.Namespace) -> int:
    from cnnkit.training.distributed import is_main

    prefer_passive_openmp()
    if getattr(args, "nproc", None) is not None and "LOCAL_RANK" not in os.environ:
        return launch_nproc(args)
    result, report, code = run_training(
        "train",
        dataset=args.dataset,
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        data_dir=args.data_dir,
        out_dir=args.out,
        run_name=args.name,
        resume=args.resume,
        dry_run=args.dry_run,
        limit=args.limit,
        test_limit=args.test_limit,
        engine=args.engine,
        report=args.report,
        progress=not args.no_progress,
        threads=args.threads,
        recipe=args.recipe,
        device=args.device,
        precision=args.precision,
        image_size=args.image_size,
        channels=args.channels,
        test_fraction=args.test_fraction,
        on_bad_image=args.on_bad_image,
    )
    if not is_main():  # under torchrun rank 0 alone prints and writes the report
        return code
    _print_image_folder(result.config)
    if args.dry_run:
        text = _(
            "dry run: one batch of {batch} trained (loss {loss}) and one test batch evaluated; "
            "no run folder written (the dataset itself is fetched into the data dir if it was "
            "missing)"
        )
        print(text.format(batch=result.config["batch_size"], loss=f"{result.dry_run_loss:.4f}"))
        return code
    lines = [
        (_("run"), str(result.run_dir)),
        (_("checkpoint"), str(result.checkpoint or _("none (no epoch completed)"))),
    ]
    if report is not None:
        lines.append((_("report"), str(report)))
    width = max(display_width(label) for label, _v in lines) + 2  # English: "checkpoint: "
    for label, value in lines:
        print(ljust(label + ":", width) + value)
    return code
