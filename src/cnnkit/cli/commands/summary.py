"""`cnnkit summary MODEL` (layer table of any PyTorch model) and `cnnkit erf CKPT`."""

from __future__ import annotations

import argparse
from typing import Any

from cnnkit.cli.commands._common import (
    add_device_flag,
    add_json_flag,
    positive_int,
    print_json,
    state_device,
)
from cnnkit.cli.commands.arithmetic import parse_dims
from cnnkit.core.checks import pair
from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import Message
from cnnkit.core.i18n import gettext as _

__all__ = [
    "DTYPES",
    "ERF_EPILOG",
    "FORMATS",
    "SUMMARY_EPILOG",
    "add_format_flags",
    "output_format",
    "parse_input",
    "parse_shape",
    "register",
    "run_erf",
    "run_summary",
    "summary_json",
]

SUMMARY_EPILOG = """\
MODEL is a registry name (see `cnnkit models`), FILE.py:FACTORY (a function returning an
nn.Module, or a module object; give --input), or a checkpoint written by `cnnkit train`
(the file or its run folder; traced at the run's input shape).

--input is repeatable, one per positional input of forward: SHAPE or SHAPE:DTYPE, e.g.
--input 3,32,32 --input 10 (two inputs) or --input 16:long (token ids for an embedding).
MACs: multiply-accumulates (FLOPs = 2 × MACs, shown with --flops); ops without a MAC rule
are listed in a note and the total is then marked as a lower bound (≥).

examples:
  cnnkit summary simple-cnn
  cnnkit summary simple-cnn --depth 0 --json
  cnnkit summary simple-cnn --format markdown
  cnnkit summary mynet.py:build --input 3,224,224
  cnnkit summary twoinput.py:build --input 3,32,32 --input 10
  cnnkit summary simple-cnn --boxes digit.png -o boxes.png --layer pool#2
"""

ERF_EPILOG = """\
The effective receptive field (Luo et al., NeurIPS 2016): mean |∂ unit / ∂ input| of the
centre unit of a layer over real test images of the checkpoint's dataset, drawn with the
theoretical receptive field box. Default layer: the last one with a local receptive field.

example:
  cnnkit erf runs/mnist/checkpoint.pt -o erf.png --images 256
"""


def register(subparsers: Any) -> None:
    from cnnkit.cli.main import HelpFormatter

    p = subparsers.add_parser(
        "summary",
        help="layer table of any PyTorch model: shapes, parameters, MACs, receptive fields",
        description="Run a model once on a dummy input and list every executed layer and "
        "functional op: output shape, parameters, multiply-accumulates and receptive field.",
        epilog=SUMMARY_EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "model", metavar="MODEL", help="registry name, FILE.py:FACTORY, checkpoint or run folder"
    )
    p.add_argument(
        "--input",
        metavar="SHAPE[:DTYPE]",
        action="append",
        default=None,
        help="shape of one sample of an input, e.g. 3,224,224 or 16:long; repeat it for each "
        "positional input (default: the registry model's own)",
    )
    p.add_argument("--flops", action="store_true", help="also print FLOPs (2 × MACs)")
    p.add_argument(
        "--depth",
        type=int,
        default=None,
        help="fold modules nested deeper than this into one row (0: the whole model)",
    )
    p.add_argument(
        "--boxes",
        metavar="IMAGE",
        default=None,
        help="draw receptive-field boxes over IMAGE (resized to the input size) into -o",
    )
    p.add_argument(
        "-o", "--output", default=None, help="figure written by --boxes (default: boxes.png)"
    )
    p.add_argument("--layer", default=None, help="layer for --boxes (default: last spatial one)")
    p.add_argument(
        "--unit",
        action="append",
        default=None,
        metavar="Y,X",
        help="unit of --layer to draw (repeatable; default: the first and the centre unit)",
    )
    add_format_flags(p)
    add_device_flag(p)
    p.set_defaults(func=run_summary)

    e = subparsers.add_parser(
        "erf",
        help="effective receptive field of a trained checkpoint",
        description="Effective receptive field of a trained model next to its theoretical one.",
        epilog=ERF_EPILOG,
        formatter_class=HelpFormatter,
    )
    e.add_argument("checkpoint", metavar="CKPT", help="checkpoint written by `cnnkit train`")
    e.add_argument("-o", "--output", default="erf.png", help="figure to write")
    e.add_argument("--layer", default=None, help="layer name as in `cnnkit summary`")
    e.add_argument("--images", type=positive_int, default=256, help="test images to average")
    e.add_argument("--data-dir", default=None, help="where the datasets are")
    add_json_flag(e)
    add_device_flag(e)
    e.set_defaults(func=run_erf)


FORMATS = ("table", "json", "csv", "markdown")
DTYPES = {
    "float32": "float32", "float": "float32", "float64": "float64", "double": "float64",
    "float16": "float16", "half": "float16", "bfloat16": "bfloat16", "int64": "int64",
    "long": "int64", "int32": "int32", "int": "int32", "bool": "bool", "uint8": "uint8",
}  # fmt: skip


def add_format_flags(parser: argparse.ArgumentParser) -> None:
    """`--format table|json|csv|markdown`, and `--json` as a shorthand for `--format json`."""
    parser.add_argument(
        "--format", choices=FORMATS, default=None, help="output format (default: table)"
    )
    parser.add_argument("--json", action="store_true", help="shorthand for --format json")


def output_format(args: argparse.Namespace) -> str:
    if args.json and args.format not in (None, "json"):
        raise CnnkitError.from_template(
            "--json contradicts --format {format}; give one of them", format=args.format
        )
    return "json" if args.json else (args.format or "table")


def parse_shape(text: str) -> tuple[int, ...]:
    """`3,224,224` or `3x224x224` -> (3, 224, 224); ranges are checked by `summary`."""
    dims = parse_dims(text.lower().replace("x", ","), "--input", max_parts=4, sep=",")
    return dims if isinstance(dims, tuple) else (dims,)


def parse_input(text: str) -> tuple[tuple[int, ...], str | None]:
    """`3,32,32` -> ((3, 32, 32), None); `16:long` -> ((16,), "int64")."""
    shape, sep, dtype = text.partition(":")
    if sep and dtype.strip().lower() not in DTYPES:
        raise CnnkitError.from_template(
            (
                "The '--input' parameter's dtype must be one of {items}. Got {dtype!r} "
                "instead (in {text!r})."
            ),
            items=", ".join(sorted(DTYPES)),
            dtype=dtype,
            text=text,
        )
    return parse_shape(shape), DTYPES[dtype.strip().lower()] if sep else None


def _unit(text: str) -> tuple[int, int]:
    return pair(parse_dims(text, "--unit", sep=","), "--unit")


def _summary_of(args: argparse.Namespace, loaded: Any, device: str = "cpu") -> Any:
    import functools

    import torch

    from cnnkit.analysis.summary.core import summary as summary_on

    summary = functools.partial(summary_on, device=device)

    if not args.input:
        if loaded.input_shape is None:
            raise CnnkitError.from_template(
                "give the input shape of {model!r} with --input C,H,W", model=args.model
            )
        return summary(loaded.model, loaded.input_shape, depth=args.depth)
    parsed = [parse_input(text) for text in args.input]
    shapes = [shape for shape, _ in parsed]
    if all(d is None for _, d in parsed):
        size: Any = shapes[0] if len(shapes) == 1 else shapes
        return summary(loaded.model, size, depth=args.depth)
    default = next((p.dtype for p in loaded.model.parameters() if p.is_floating_point()), None)
    dtypes = [getattr(torch, d) if d else (default or torch.float32) for _, d in parsed]
    return summary(loaded.model, shapes, dtypes=dtypes, depth=args.depth)


def summary_json(s: Any) -> dict[str, Any]:
    from cnnkit.cli.commands._common import to_jsonable

    return {**to_jsonable(s), "macs_complete": s.macs_complete, "total_flops": s.total_flops}


def run_summary(args: argparse.Namespace) -> int:
    from cnnkit.analysis.summary.load import load_model
    from cnnkit.core.i18n import translate
    from cnnkit.models.device import resolve_device
    from cnnkit.render.tables import render_summary, summary_csv, summary_markdown

    fmt = output_format(args)
    if not args.boxes:  # these only say how to draw the boxes: refused rather than ignored
        given = [
            flag
            for flag, value in (("--layer", args.layer), ("--unit", args.unit), ("-o", args.output))
            if value is not None
        ]
        if given:
            if len(given) > 1:
                raise CnnkitError.from_template(
                    "{given} only go with --boxes IMAGE (the receptive-field figure). Got "
                    "{given} without --boxes.",
                    given=", ".join(given),
                )
            raise CnnkitError.from_template(
                "{given} only goes with --boxes IMAGE (the receptive-field figure). Got {given} "
                "without --boxes.",
                given=given[0],
            )
    else:
        from cnnkit.cli.commands._common import refuse_overwriting_input

        args.output = args.output or "boxes.png"
        refuse_overwriting_input(args.boxes, args.output)
    device = resolve_device(args.device, func="summary")
    loaded = load_model(args.model)
    loaded.model.to(device)  # loaded on the CPU (map_location), run where --device says
    s = _summary_of(args, loaded, device)
    path = _draw_boxes(args, loaded.model, s) if args.boxes else None
    state_device(args.device, device, stderr=True)  # stdout: the table, JSON, CSV, ...
    if path is not None and fmt == "table":
        print(_("wrote {path}").format(path=path))
    if fmt == "json":
        print_json(summary_json(s))
    elif fmt == "csv":
        print(summary_csv(s), end="")
    elif fmt == "markdown":
        print(summary_markdown(s, flops=args.flops, tr=translate))  # current language
    else:
        print(render_summary(s, flops=args.flops))
    return 0


def _draw_boxes(args: argparse.Namespace, model: Any, s: Any) -> Any:
    import numpy as np
    from PIL import Image

    from cnnkit.analysis.summary.core import box_of
    from cnnkit.imaging.images import read_image
    from cnnkit.render.summary_figures import plot_boxes

    if len(s.input_shape) != 4:
        raise CnnkitError("--boxes needs an image model (input C,H,W)")
    _, c, h, w = s.input_shape
    if args.layer is None:
        spatial = [r for r in s.rows if r.rf.status == "local" and len(r.output_shape) == 4]
        if not spatial:
            raise CnnkitError.from_template(
                "{model} has no layer with a local receptive field to draw", model=s.model
            )
        row = spatial[-1]
    else:
        row = s.row(args.layer)
    if len(row.output_shape) != 4:
        raise CnnkitError.from_template(
            "layer {row_name!r} has no spatial output {output_shape}",
            row_name=row.name,
            output_shape=row.output_shape,
        )
    oh, ow = row.output_shape[2:]
    units = [_unit(u) for u in args.unit] if args.unit else [(0, 0), (oh // 2, ow // 2)]
    image = read_image(args.boxes, mode="L" if c == 1 else "RGB")
    resized = Image.fromarray(image.astype(np.uint8)).resize((w, h), Image.Resampling.BILINEAR)
    boxes = []
    for u in units:
        if not (0 <= u[0] < oh and 0 <= u[1] < ow):
            raise CnnkitError.from_template(
                "unit {u} is outside the {oh}×{ow} output of {row_name!r}",
                u=u,
                oh=oh,
                ow=ow,
                row_name=row.name,
            )
        box = box_of(row.rf, u, (h, w), row.name)
        label = Message(
            "{layer} unit {unit}: {h}×{w}", layer=row.name, unit=u, h=box.size[0], w=box.size[1]
        )
        boxes.append((label, box))
    title = Message(
        "{model}: receptive fields of {layer} on a {h}×{w} input",
        model=s.model,
        layer=row.name,
        h=h,
        w=w,
    )  # fmt: skip  (worded by the figure, in Japanese only where a Japanese font draws it)
    return plot_boxes(np.asarray(resized, dtype=np.float64), boxes, args.output, title=title)


def run_erf(args: argparse.Namespace) -> int:
    from cnnkit.analysis.summary.erf import effective_receptive_field
    from cnnkit.data import load_dataset
    from cnnkit.data.transforms import dataset_normalize, normalize_images
    from cnnkit.models.checkpoint import load_checkpoint
    from cnnkit.models.device import resolve_device
    from cnnkit.render.summary_figures import plot_erf

    device = resolve_device(args.device, func="erf")
    ckpt = load_checkpoint(args.checkpoint)
    dataset = ckpt.config.get("dataset")
    if not dataset:
        raise CnnkitError.from_template(
            "{checkpoint}: its config names no dataset", checkpoint=args.checkpoint
        )
    test = load_dataset(dataset, "test", data_dir=args.data_dir)
    if args.images > len(test.images):  # was silently capped at the test set's size
        raise CnnkitError.from_template(
            (
                "The '--images' parameter of erf must be at most the {n_images:,} "
                "{dataset} test images. Got {images} instead."
            ),
            n_images=len(test.images),
            dataset=dataset,
            images=args.images,
        )
    # As in training: the run's own (mean, std), else the dataset's.
    normalize = ckpt.config.get("normalize") or dataset_normalize(dataset, test.images)
    images = normalize_images(test.images[: args.images], normalize)  # (N, C, H, W)
    erf = effective_receptive_field(ckpt.model, images, layer=args.layer, device=device)
    title = Message("{model} on {dataset}", model=ckpt.model_name, dataset=dataset)
    path = plot_erf(erf, args.output, title=title)
    state_device(args.device, device, stderr=True)  # stdout may be JSON
    if args.json:
        print_json({**_erf_json(erf), "figure": str(path)})
        return 0
    box = erf.theoretical
    where = _("layer {layer}, unit {unit}, {n} {dataset} test images")
    print(where.format(layer=erf.layer, unit=erf.unit, n=erf.n_images, dataset=dataset))
    theory = _(
        "theoretical receptive field: {h}×{w} (rows {top}..{bottom}, columns {left}..{right})"
    )
    top, bottom, left, right = box.clipped
    print(
        theory.format(h=box.size[0], w=box.size[1], top=top, bottom=bottom, left=left, right=right)
    )
    print(_("|gradient| inside it: {percent:.1f}%").format(percent=100 * erf.mass_inside))
    spread = _("95% of |gradient| within {radius:g} pixels of the centre (Chebyshev)")
    print(spread.format(radius=erf.radius_95))
    print(_("wrote {path}").format(path=path))
    return 0


def _erf_json(erf: Any) -> dict[str, Any]:
    return {
        "layer": erf.layer,
        "unit": erf.unit,
        "n_images": erf.n_images,
        "theoretical": erf.theoretical,
        "mass_inside": erf.mass_inside,
        "radius_95": erf.radius_95,
    }
