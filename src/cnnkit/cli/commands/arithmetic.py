"""`cnnkit size`, `cnnkit params`, `cnnkit compare`: shape and parameter arithmetic.

Pure Python: none of these commands imports torch or NumPy.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from cnnkit.calc.arithmetic import LayerShape, effective_kernel, layer_output_shape
from cnnkit.calc.params import (
    FcConvComparison,
    ParamCount,
    compare_fc_conv,
    conv2d_params,
    percent_text,
)
from cnnkit.cli.commands._common import add_json_flag, print_json
from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import gettext as _
from cnnkit.core.text import display_width, ljust, rjust

__all__ = [
    "MAX_DIGITS",
    "parse_dims",
    "parse_padding",
    "register",
    "render_compare",
    "render_params",
    "render_size",
]

_INT = re.compile(r"[+-]?\d+")
MAX_DIGITS = 100


def _short(text: str) -> str:
    return text if len(text) <= 60 else f"{text[:35]}...({len(text):,} characters)"


def parse_dims(text: str, name: str, *, max_parts: int = 2, sep: str = "x") -> Any:
    """`"28"` -> 28, `"64x48"` -> (64, 48); a non-integer part names the parameter and value.

    Only the syntax is checked here; ranges (positive, non-negative) are the library's job.
    """
    parts = [p.strip() for p in text.lower().split(sep)]
    if not 1 <= len(parts) <= max_parts or not all(_INT.fullmatch(p) for p in parts):
        form = {1: "an integer", 2: f"an integer or a pair N{sep}M", 3: f"H{sep}W{sep}C"}.get(
            max_parts, f"integers separated by {sep!r}"
        )
        raise CnnkitError.from_template(
            "The {name!r} parameter must be {allowed}. Got {got!r} instead.",
            name=name, allowed=form, got=_short(text),
        )  # fmt: skip
    if any(len(p) > MAX_DIGITS for p in parts):  # Python refuses to read > 4,300 digits anyway
        raise CnnkitError.from_template(
            (
                "The {name!r} parameter must have integers of at most {max_digits} "
                "digits. Got {text!r} instead."
            ),
            name=name,
            max_digits=MAX_DIGITS,
            text=_short(text),
        )
    values = tuple(int(p) for p in parts)
    return values[0] if len(values) == 1 else values


def parse_padding(text: str) -> Any:
    """`1`, `1x2` (H x W), `0,1,0,1` (top, bottom, left, right), `same`, `valid`, `full`."""
    if text.strip().lower() in ("same", "valid", "full"):
        return text.strip().lower()
    if "," in text:
        parts = [p.strip() for p in text.split(",")]
        if len(parts) == 4 and all(_INT.fullmatch(p) for p in parts):
            return tuple(int(p) for p in parts)
        allowed = "N, NxM, T,B,L,R (top, bottom, left, right), 'same', 'valid' or 'full'"
        raise CnnkitError.from_template(
            "The {name!r} parameter must be {allowed}. Got {got!r} instead.",
            name="padding", allowed=allowed, got=text,
        )  # fmt: skip
    return parse_dims(text, "padding")


# --------------------------------------------------------------------------- rendering


def _table(rows: list[tuple[str, str]]) -> str:
    width = max(display_width(k) for k, _v in rows)  # Japanese names take two cells a character
    return "\n".join(f"{ljust(k, width)}  {v}" for k, v in rows)


def _hw(p: tuple[int, int]) -> str:
    return f"{p[0]} × {p[1]}"


def _axis_formula(r: LayerShape, axis: int) -> str:
    size, k, s, d = r.input_size[axis], r.kernel_size[axis], r.stride[axis], r.dilation[axis]
    before, after = r.padding[axis]
    out = r.output_size[axis]
    k_eff = f"({d}·({k} − 1) + 1)" if d != 1 else f"{k}"
    if r.kind == "transposed":
        op = r.output_padding[axis]
        return f"({size} − 1)·{s} − 2·{before} + {d}·({k} − 1) + {op} + 1 = {out}"
    rounding = "ceil" if r.ceil_mode else "floor"
    text = f"{rounding}(({size} + {before} + {after} − {k_eff}) / {s}) + 1"
    span = size + before + after - effective_kernel(k, d)
    raw = (-(-span // s) if r.ceil_mode else span // s) + 1
    if raw != out:
        text += _(" = {raw}, − 1 (last window would start in the padding)").format(raw=raw)
    return f"{text} = {out}"


def render_size(r: LayerShape) -> str:
    (top, bottom), (left, right) = r.padding
    name = {
        "conv": _("convolution"),
        "pool": _("pooling"),
        "transposed": _("transposed convolution"),
    }
    rows = [
        (_("layer"), name[r.kind]),
        (_("input (H × W)"), _hw(r.input_size)),
        (_("kernel"), _hw(r.kernel_size)),
    ]
    if r.effective_kernel != r.kernel_size:
        rows.append((_("effective kernel"), _hw(r.effective_kernel)))
    sides = _("top {top}, bottom {bottom}, left {left}, right {right}").format(
        top=top, bottom=bottom, left=left, right=right
    )
    rows += [
        (_("stride"), _hw(r.stride)),
        (_("padding"), sides),
        (_("dilation"), _hw(r.dilation)),
    ]
    if r.kind == "transposed":
        rows.append((_("output padding"), _hw(r.output_padding)))
    if r.kind == "pool":
        rows.append((_("ceil mode"), _("yes") if r.ceil_mode else _("no")))
    rows += [
        (_("H_out"), _axis_formula(r, 0)),
        (_("W_out"), _axis_formula(r, 1)),
        (_("output (H × W)"), _hw(r.output_size)),
    ]
    return _table(rows)


def render_params(p: ParamCount, args: argparse.Namespace) -> str:
    kh, kw = args.kernel if isinstance(args.kernel, tuple) else (args.kernel, args.kernel)
    c_in, c_out, g = args.in_channels, args.out_channels, args.groups
    per_group = f"({c_in} / {g})" if g != 1 else f"{c_in}"
    rows = [
        (_("layer"), f"Conv2d({c_in}, {c_out}, kernel_size=({kh}, {kw}), groups={g})"),
        (_("weight"), f"{c_out} · {per_group} · {kh} · {kw} = {p.weight:,}"),
        (_("bias"), f"{p.bias:,}" if p.bias else _("0 (no bias)")),
        (_("total"), f"{p.total:,}"),
    ]
    return _table(rows)


def render_compare(c: FcConvComparison) -> str:
    h, w, ch = c.input_shape

    def row(name: str, weights: str, bias: str, total: str) -> str:
        cells = (ljust(name, 36), rjust(weights, 15), rjust(bias, 8), rjust(total, 15))
        return " ".join(cells)

    lines = [
        _("input {h}×{w}×{ch} = {n} values").format(h=h, w=w, ch=ch, n=f"{c.input_features:,}"),
        "",
        row(_("layer"), _("weights"), _("bias"), _("total")),
    ]
    fc = c.fc
    fc_name = _("fully connected {n_in} → {n_out}").format(
        n_in=f"{c.input_features:,}", n_out=f"{c.hidden:,}"
    )
    lines.append(row(fc_name, f"{fc.weight:,}", f"{fc.bias:,}", f"{fc.total:,}"))
    for i, layer in enumerate(c.conv_layers, 1):
        kh, kw = layer.kernel_size
        name = f"conv{i} {layer.in_channels} → {layer.out_channels}, {kh}×{kw}"
        p = layer.params
        lines.append(row(name, f"{p.weight:,}", f"{p.bias:,}", f"{p.total:,}"))
    reduction = _("reduction")
    width = max(display_width("conv / fc"), display_width(reduction)) + 1
    lines += [
        row(_("convolutions, total"), "", "", f"{c.conv_total:,}"),
        "",
        f"{ljust('conv / fc', width)}  = {c.ratio:.6g} ({100 * c.ratio:.3g}%)",
        f"{ljust(reduction, width)}  = {percent_text(c.reduction_percent)}",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- handlers


def _size(args: argparse.Namespace) -> int:
    text = args.input_opt or args.input
    if text is None:
        raise CnnkitError("give the input size, e.g. `cnnkit size 28` or `--input 64x48`.")
    if args.input_opt and args.input and args.input_opt != args.input:
        raise CnnkitError.from_template(
            "two input sizes given: {input!r} and --input {input_opt!r}.",
            input=args.input,
            input_opt=args.input_opt,
        )
    kind = "transposed" if args.transposed else "pool" if args.pool else "conv"
    if args.pool and args.transposed:
        raise CnnkitError("choose one of --pool and --transposed.")
    result = layer_output_shape(
        input_size=parse_dims(text, "input"),
        kernel_size=parse_dims(args.kernel, "kernel"),
        stride=None if args.stride is None else parse_dims(args.stride, "stride"),
        padding=parse_padding(args.padding),
        dilation=parse_dims(args.dilation, "dilation"),
        kind=kind,
        ceil_mode=args.ceil_mode,
        output_padding=parse_dims(args.output_padding, "output_padding"),
    )
    if args.json:
        print_json(result)
    else:
        print(render_size(result))
    return 0


def _params(args: argparse.Namespace) -> int:
    args.kernel = parse_dims(args.kernel, "kernel")
    for name in ("in_channels", "out_channels", "groups"):
        setattr(args, name, parse_dims(getattr(args, name), name, max_parts=1))
    result = conv2d_params(
        args.in_channels, args.out_channels, args.kernel, groups=args.groups, bias=args.bias
    )
    if args.json:
        print_json(result)
    else:
        print(render_params(result, args))
    return 0


def _compare(args: argparse.Namespace) -> int:
    shape = parse_dims(args.input, "input", max_parts=3)
    if not isinstance(shape, tuple) or len(shape) != 3:
        raise CnnkitError.from_template(
            "The 'input' parameter must be HxWxC. Got {input!r} instead.", input=args.input
        )
    channels = parse_dims(args.conv, "conv", max_parts=64, sep=",")
    result = compare_fc_conv(
        shape,
        hidden=parse_dims(args.hidden, "hidden", max_parts=1),
        conv_channels=channels if isinstance(channels, tuple) else (channels,),
        kernel_size=parse_dims(args.kernel, "kernel"),
        bias=args.bias,
    )
    if args.json:
        print_json(result)
    else:
        print(render_compare(result))
    return 0


def register(subparsers: Any) -> None:
    from cnnkit.cli.main import HelpFormatter

    p = subparsers.add_parser(
        "size",
        help="output size of a convolution, pooling or transposed convolution",
        description="Output size of one layer, with PyTorch's rules and the formula per axis.\n"
        "Sizes are N or HxW (e.g. 28, 64x48, kernel 1x7).\n\n"
        "examples:\n"
        "  cnnkit size 28 --kernel 3 --padding same\n"
        "  cnnkit size --input 224x224 --kernel 7 --stride 2 --padding 3\n"
        "  cnnkit size 13 --pool --kernel 2 --ceil-mode\n"
        "  cnnkit size 14 --transposed --kernel 3 --stride 2 --padding 1 --output-padding 1",
        formatter_class=HelpFormatter,
    )
    p.add_argument("input", nargs="?", help="input size, N or HxW")
    p.add_argument("--input", dest="input_opt", metavar="HxW", help="same as the positional")
    p.add_argument("--kernel", "-k", default="3", help="kernel size, N or HxW")
    p.add_argument(
        "--stride", "-s", default=None, help="stride (default: 1; the kernel size with --pool)"
    )
    p.add_argument(
        "--padding",
        "-p",
        default="0",
        help="N, HxW, T,B,L,R (top, bottom, left, right), same, valid or full",
    )
    p.add_argument("--dilation", "-d", default="1", help="dilation, N or HxW")
    kind = p.add_argument_group("layer kind (default: convolution)")
    kind.add_argument("--pool", action="store_true", help="max / average pooling rules")
    kind.add_argument("--transposed", action="store_true", help="transposed convolution")
    p.add_argument("--ceil-mode", action="store_true", help="round up (pooling only)")
    p.add_argument("--output-padding", default="0", help="transposed convolution only, N or HxW")
    add_json_flag(p)
    p.set_defaults(func=_size)

    p = subparsers.add_parser(
        "params",
        help="parameter count of a Conv2d layer",
        description="Parameters of nn.Conv2d: C_out·(C_in/groups)·K_h·K_w weights + C_out "
        "biases.\n\nexample:\n  cnnkit params --in 3 --out 64 --kernel 7",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--in", dest="in_channels", required=True, metavar="C_IN", help="input channels")
    p.add_argument(
        "--out", dest="out_channels", required=True, metavar="C_OUT", help="output channels"
    )
    p.add_argument("--kernel", "-k", default="3", help="kernel size, N or HxW")
    p.add_argument(
        "--groups", default="1", help="groups; must divide C_IN and C_OUT (1: an ordinary conv)"
    )
    p.add_argument("--no-bias", dest="bias", action="store_false", help="no bias term")
    add_json_flag(p)
    p.set_defaults(func=_params)

    p = subparsers.add_parser(
        "compare",
        help="fully-connected vs convolutional first layers: parameter counts",
        description="The chapter's comparison (sections 1.1, 1.4, exercise 5): a Linear layer "
        "on the flattened image vs a stack of convolutions.\n\n"
        "examples:\n"
        "  cnnkit compare --input 224x224x3 --hidden 1000 --conv 64\n"
        "  cnnkit compare --input 224x224x3 --hidden 1000 --conv 64,64,64",
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--input", default="224x224x3", metavar="HxWxC", help="image height, width, channels"
    )
    p.add_argument("--hidden", default="1000", help="units of the fully-connected layer")
    p.add_argument(
        "--conv", default="64", metavar="C1,C2,...", help="output channels of each convolution"
    )
    p.add_argument("--kernel", "-k", default="3", help="kernel size of the convolutions")
    p.add_argument("--no-bias", dest="bias", action="store_false", help="count weights only")
    add_json_flag(p)
    p.set_defaults(func=_compare)
