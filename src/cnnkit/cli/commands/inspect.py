"""`cnnkit evaluate`, `cnnkit predict`, `cnnkit visualize`: use and look inside a checkpoint."""

from __future__ import annotations

import argparse
from typing import Any

from cnnkit.cli.commands._common import (
    add_device_flag,
    add_json_flag,
    positive_int,
    print_json,
    refuse_overwriting_input,
    state_device,
)
from cnnkit.core.i18n import gettext as _
from cnnkit.core.text import display_width, ljust, rjust

__all__ = ["evaluate_cli", "predict_cli", "register", "visualize_cli"]


def register(subparsers: argparse._SubParsersAction) -> None:
    from cnnkit.cli.main import HelpFormatter

    evaluate = subparsers.add_parser(
        "evaluate",
        help="accuracy, loss, per-class precision/recall/F1 and confusion matrix of a checkpoint",
        description="Run a checkpoint on its dataset (from the run's config) and print "
        "accuracy, mean cross-entropy, per-class precision, recall, F1 and support, and the "
        "confusion matrix (rows: true class, columns: predicted class).",
        formatter_class=HelpFormatter,
    )
    evaluate.add_argument("checkpoint", metavar="CKPT", help="a checkpoint.pt written by training")
    evaluate.add_argument(
        "--split", choices=("test", "train"), default="test", help="which images to score"
    )
    evaluate.add_argument(
        "--data-dir", default=None, help="where the dataset is (default: the run's data dir)"
    )
    add_json_flag(evaluate)
    add_device_flag(evaluate)
    evaluate.set_defaults(func=evaluate_cli)

    predict = subparsers.add_parser(
        "predict",
        help="classify your own digit images (PNG, JPEG, ...) with a checkpoint",
        description="Classify image files of single handwritten digits, any size, dark on "
        "light or light on dark: each is preprocessed as MNIST was made (crop, scale to 20 px, "
        "centre of mass at the centre of 28x28) and the most probable classes are printed.",
        formatter_class=HelpFormatter,
    )
    predict.add_argument(
        "checkpoint",
        metavar="CKPT",
        help="a checkpoint.pt written by training, or a model.onnx from `cnnkit export` "
        "(run with onnxruntime, without torch)",
    )
    predict.add_argument("images", metavar="IMAGE", nargs="*", help="image files")
    predict.add_argument(
        "--examples",
        action="store_true",
        help="also classify the bundled real MNIST test digits (one per class)",
    )
    predict.add_argument("--top", type=positive_int, default=3, help="how many classes to show")
    add_json_flag(predict)
    add_device_flag(predict)
    predict.set_defaults(func=predict_cli, parser=predict)

    visualize = subparsers.add_parser(
        "visualize",
        help="draw an image's feature maps in every conv layer of a checkpoint",
        description="Preprocess an image as `cnnkit predict` does and draw it with the "
        "feature maps of every conv layer after ReLU (each map scaled to its own maximum).",
        formatter_class=HelpFormatter,
    )
    visualize.add_argument("checkpoint", metavar="CKPT", help="a checkpoint.pt written by training")
    visualize.add_argument(
        "--image", default=None, help="the image (default: a bundled MNIST test digit)"
    )
    visualize.add_argument(
        "-o", "--output", default="feature_maps.png", help="the figure to write (.png, .pdf, .svg)"
    )
    add_device_flag(visualize)
    visualize.set_defaults(func=visualize_cli)


def evaluate_cli(args: argparse.Namespace) -> None:
    from cnnkit.analysis.evaluate import evaluate
    from cnnkit.models.device import resolve_device

    device = resolve_device(args.device, func="evaluate")
    result = evaluate(args.checkpoint, split=args.split, data_dir=args.data_dir, device=device)
    state_device(args.device, device, stderr=True)  # stdout: the table or the JSON
    if args.json:
        print_json(result)
        return
    line = _("{dataset} {split}: {n} images, accuracy {accuracy}, loss {loss}, macro F1 {f1}")
    print(line.format(
        dataset=result.dataset, split=_(result.split), n=result.num_images,
        accuracy=f"{result.accuracy:.2%}", loss=f"{result.loss:.4f}",
        f1=f"{result.macro_f1:.2%}",
    ))  # fmt: skip
    heads = (_("class"), _("precision"), _("recall"), "F1", _("support"))
    width = max(5, display_width(heads[0]), *(display_width(m.name) for m in result.per_class))
    print()
    print(f"{ljust(heads[0], width)}  {rjust(heads[1], 9)}  {rjust(heads[2], 7)}  "
          f"{rjust(heads[3], 7)}  {rjust(heads[4], 7)}")  # fmt: skip
    for m in result.per_class:
        print(
            f"{ljust(m.name, width)}  {m.precision:>9.2%}  {m.recall:>7.2%}  {m.f1:>7.2%}  "
            f"{m.support:>7}"
        )
    print()
    print(_("confusion matrix (rows: true class, columns: predicted class)"))
    cell = max(4, len(str(max(max(row) for row in result.confusion))) + 1)
    print(" " * width + "".join(f"{m.name[: cell - 1]:>{cell}}" for m in result.per_class))
    for m, row in zip(result.per_class, result.confusion, strict=True):
        print(ljust(m.name, width) + "".join(f"{v:>{cell}}" for v in row))


def predict_cli(args: argparse.Namespace) -> int | None:
    from cnnkit.imaging.digits import example_digits, example_label

    paths = list(args.images)
    if args.examples:
        paths += [str(p) for p in example_digits()]
    if not paths:
        args.parser.error(_("give at least one IMAGE, or --examples"))
    device = None  # torch's device; an ONNX file runs on onnxruntime's CPU provider
    if str(args.checkpoint).lower().endswith(".onnx"):  # onnxruntime only, torch never loaded
        from cnnkit.analysis.onnx_predict import predict_onnx

        results: list[Any] = predict_onnx(args.checkpoint, paths, top=args.top)
    else:
        from cnnkit.analysis.predict import predict
        from cnnkit.models.device import resolve_device

        device = resolve_device(args.device, func="predict")
        results = predict(args.checkpoint, paths, top=args.top, device=device)
    classes = len(results[0].top) if results else args.top  # predict caps top at the classes
    if args.top > classes:  # like torch.topk, a k past the classes is refused, not capped
        args.parser.error(
            _("argument --top: expected at most {classes} (the model's classes), got {top}").format(
                classes=classes, top=args.top
            )
        )
    if device is not None:  # once every input is accepted (a refusal stays one line)
        state_device(args.device, device, stderr=True)  # stdout: the predictions or the JSON
    if args.json:
        print_json(results)
        return None
    width = max(display_width(r.path) for r in results)
    examples = {str(p) for p in example_digits()} if args.examples else set()
    for r in results:
        ranked = "  ".join(f"{c.name}: {c.probability:6.1%}" for c in r.top)
        truth = ""
        if r.path in examples:  # only the bundled digits' names carry their label
            truth = _("  (true {label})").format(label=example_label(r.path))
        print(f"{ljust(r.path, width)}  {ranked}{truth}")
    return None


def visualize_cli(args: argparse.Namespace) -> None:
    from cnnkit.render.feature_maps import visualize

    refuse_overwriting_input(args.image, args.output)
    from cnnkit.models.device import resolve_device

    device = resolve_device(args.device, func="visualize")
    path = visualize(args.checkpoint, args.image, args.output, device=device)
    state_device(args.device, device, stderr=True)  # stdout stays the figure's path
    print(path)
