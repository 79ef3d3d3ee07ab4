"""`cnnkit export CKPT|RUN_DIR -o model.onnx`: ONNX for deployment, checked by onnxruntime."""

from __future__ import annotations

import argparse
from typing import Any

from cnnkit.cli.commands._common import add_json_flag, positive_int, print_json
from cnnkit.core.i18n import gettext as _

__all__ = ["EPILOG", "register", "run"]

EPILOG = """\
The file has a dynamic batch axis (input "input" (N, C, H, W) -> "logits"), ONNX opset {opset}
by default, and metadata with the class names, the normalisation (mean, std) and the input
shape, so that `cnnkit predict model.onnx IMAGE...` runs it with onnxruntime, without torch.

Before the file is kept, onnxruntime and torch both run the first --images test images of the
checkpoint's dataset (seeded random images when the dataset is not on disk): the export is
refused, and nothing written, unless max |logit difference| <= 1e-4 and every top-1 class
agrees.

examples:
  cnnkit export runs/mnist -o model.onnx
  cnnkit predict model.onnx digit.png --examples
"""


def register(subparsers: Any) -> None:
    from cnnkit.cli.main import HelpFormatter
    from cnnkit.models.onnx_export import OPSET

    p = subparsers.add_parser(
        "export",
        help="export a checkpoint to ONNX, checked against torch by onnxruntime",
        description="Export a trained checkpoint (or run folder) to an ONNX file for "
        "deployment without PyTorch, and check it with onnxruntime on real test images.",
        epilog=EPILOG.format(opset=OPSET),
        formatter_class=HelpFormatter,
    )
    p.add_argument("checkpoint", metavar="CKPT|RUN_DIR", help="checkpoint.pt or its run folder")
    p.add_argument("-o", "--output", default="model.onnx", help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=OPSET, help="ONNX opset version (13-20)")
    p.add_argument("--images", type=positive_int, default=256, help="test images to compare")
    p.add_argument("--data-dir", default=None, help="where the datasets are")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnkit.models.onnx_export import export_onnx

    report = export_onnx(
        args.checkpoint, args.output, opset=args.opset, n_images=args.images,
        data_dir=args.data_dir,
    )  # fmt: skip
    if args.json:
        print_json(report)
        return 0
    c, h, w = report.input_shape
    wrote = _("wrote {path}: {model}, opset {opset}, input (N, {c}, {h}, {w})")
    print(wrote.format(path=report.path, model=report.model, opset=report.opset, c=c, h=h, w=w))
    check = _(
        "onnxruntime vs torch on {images} images ({source}): max |logit difference| {diff} "
        "(goal <= {goal}), top-1 agreement {agreement}"
    )
    print(
        check.format(
            images=report.images,
            source=_source(report.image_source),
            diff=f"{report.max_abs_diff:.2e}",
            goal=f"{report.tolerance:g}",
            agreement=f"{report.top1_agreement:.2%}",
        )
    )
    classes = _("classes: {classes}; normalize (mean, std): {normalize}")
    print(classes.format(classes=", ".join(report.classes), normalize=report.normalize))
    return 0


def _source(source: str) -> str:
    """`onnx_export`'s image source ("mnist test set", "generated (...)") in the reader's words."""
    if source.endswith(" test set"):
        return _("{dataset} test set").format(dataset=source.removesuffix(" test set"))
    if source == "generated (seeded uniform noise)":
        return _("generated (seeded uniform noise)")
    return source
