"""`cnnkit rf SPEC`: receptive field, jump and first-unit centre of a chain of conv/pool layers."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from cnnkit.cli.commands._common import print_json
from cnnkit.cli.commands.arithmetic import parse_dims
from cnnkit.cli.commands.summary import add_format_flags, output_format
from cnnkit.core.i18n import gettext as _
from cnnkit.core.i18n import translate

__all__ = ["EPILOG", "register", "run"]

EPILOG = """\
layer notation (comma-separated):
  conv3            3×3 convolution, stride 1, no padding
  conv1x7          anisotropic kernel (height 1, width 7)
  conv3/s2/p1/d2   stride 2, padding 1, dilation 2 (each also HxW, e.g. s2x1)
  conv3/psame      padding "same" (also pvalid, pfull, or p1:0:1:0 = top:bottom:left:right)
  pool2            2×2 pooling, stride = kernel size (as in torch); pool3/s2/c: ceil_mode
  conv3/p1*4       a layer repeated four times

presets: {presets}

columns: r = receptive-field size in input pixels, jump = input pixels between adjacent
units, start = input coordinate of the centre of the first unit's receptive field
(pixel i is centred at i). Values that differ between axes are shown as H,W.

examples:
  cnnkit rf vgg-like --chapter
  cnnkit rf "conv3/s2/p1,conv1x7/p0x3,conv7x1/p3x0" --input 32x32
"""


def register(subparsers: Any) -> None:
    from cnnkit.calc.receptive_field import PRESETS
    from cnnkit.cli.main import HelpFormatter

    presets = "".join(f"\n  {name:12} {about}" for name, (_, about) in PRESETS.items())
    p = subparsers.add_parser(
        "rf",
        help="receptive fields of a chain of conv/pool layers",
        description="Receptive-field size, jump (effective stride) and first-unit centre after "
        "each layer, by the recurrence of Araujo, Norris & Sim (Distill, 2019).",
        epilog=EPILOG.format(presets=presets),
        formatter_class=HelpFormatter,
    )
    p.add_argument("spec", metavar="SPEC", help="layers in the notation below, or a preset name")
    p.add_argument(
        "--input",
        metavar="SIZE",
        default=None,
        help="input size, N or HxW (e.g. 224 or 28x28), to also show each output size",
    )
    p.add_argument(
        "--chapter",
        action="store_true",
        help="add the chapter's simplified R_l = R_{l-1} + (K_l - 1) for comparison",
    )
    add_format_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cnnkit.calc.receptive_field import (
        chapter_receptive_fields,
        parse_layers,
        receptive_fields,
    )
    from cnnkit.core.checks import pair
    from cnnkit.render.tables import fmt_pair, markdown_table, render_table

    layers = parse_layers(args.spec)
    input_size = None
    if args.input is not None:
        input_size = pair(parse_dims(args.input, "--input"), "--input")  # 224 -> (224, 224)
    rows = receptive_fields(layers, input_size)  # checks that the sizes are positive
    chapter = chapter_receptive_fields(layers) if args.chapter else None

    fmt = output_format(args)
    if fmt == "json":
        out: dict[str, Any] = {
            "spec": ",".join(layer.notation() for layer in layers),
            "input_size": input_size,
            "layers": [{**dataclasses.asdict(r), "notation": r.layer.notation()} for r in rows],
        }
        if chapter is not None:
            out["chapter_formula"] = chapter
        print_json(out)
        return 0
    if fmt == "csv":
        print(_csv(rows, chapter), end="")
        return 0
    table = rows.table(chapter, tr=translate)  # words in the current language
    if fmt == "markdown":
        print(markdown_table(table))
        return 0
    print(render_table(table.headers, table.rows, align=table.align))
    last = rows[-1]
    line = _("receptive field of the last layer: {size} input pixels (H×W), jump {jump}")
    print("\n" + line.format(size=fmt_pair(last.size), jump=fmt_pair(last.jump)))
    return 0


def _csv(rows: Any, chapter: Any) -> str:
    """Raw values, one line per layer (no input line), H and W in their own columns."""
    from cnnkit.render.tables import csv_table

    headers = ["layer", "spec", "r_h", "r_w", "jump_h", "jump_w", "start_h", "start_w"]
    if rows.input_size is not None:
        headers += ["output_h", "output_w"]
    if chapter is not None:
        headers += ["chapter_r_h", "chapter_r_w"]
    lines = []
    for i, r in enumerate(rows):
        cells = [r.name, r.layer.notation(), *r.size, *r.jump, *r.start]
        if r.output is not None:
            cells += list(r.output)
        if chapter is not None:
            cells += list(chapter[i])
        lines.append(cells)
    return csv_table(headers, lines)
