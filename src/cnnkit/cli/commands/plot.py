"""`cnnkit plot ...`: figures that explain a concept. One `_register_*` function per plot.

To add a plot, write `_register_<name>(plots)` that adds a sub-command to `plots` and sets
`func`, and call it from `register`.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any, NoReturn

from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import gettext

__all__ = ["register", "run_activations"]


def register(subparsers: Any) -> None:
    from cnnkit.cli.main import HelpFormatter

    p: argparse.ArgumentParser = subparsers.add_parser(
        "plot",
        help="draw explanatory figures (activation functions, ...)",
        description="Draw a figure and save it (.png, .pdf, .svg, ...).",
        formatter_class=HelpFormatter,
    )
    plots = p.add_subparsers(dest="plot", metavar="PLOT")
    _register_activations(plots)

    def missing_plot(args: argparse.Namespace) -> NoReturn:
        p.error(gettext("choose a plot: activations"))

    p.set_defaults(func=missing_plot)


def _register_activations(plots: Any) -> None:
    from cnnkit.cli.main import HelpFormatter

    p = plots.add_parser(
        "activations",
        help="activation functions and their derivatives, one panel each",
        description="Plot each activation function f(x) and its derivative f'(x). The dot "
        "marks f'(0), the value PyTorch's autograd uses at the kink.",
        epilog="activations: relu, leaky-relu, sigmoid, tanh, elu, gelu, gelu-tanh\n\n"
        "examples:\n"
        "  cnnkit plot activations -o activations.png\n"
        "  cnnkit plot activations --only relu,leaky-relu,gelu --range -3 3 -o act.svg",
        formatter_class=HelpFormatter,
    )
    p.add_argument("-o", "--output", required=True, metavar="PATH", help="output figure")
    p.add_argument(
        "--only", metavar="NAMES", default="all", help="comma-separated activations, or all"
    )
    p.add_argument(
        "--range",
        nargs=2,
        type=float,
        default=(-4.0, 4.0),
        metavar=("XMIN", "XMAX"),
        help="x range (default: -4 4)",
    )
    p.set_defaults(func=run_activations)


def run_activations(args: argparse.Namespace) -> None:
    from cnnkit.ops.activations import ACTIVATIONS, get_activation
    from cnnkit.render.figures import activations_figure, check_figure_path, save_figure

    check_figure_path(args.output)
    lo, hi = args.range
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi and math.isfinite(hi - lo)):
        raise CnnkitError.from_template(
            (
                "The '--range' option needs finite XMIN < XMAX (XMAX - XMIN at most "
                "{max:.4g}). Got {lo:g} {hi:g} instead."
            ),
            max=sys.float_info.max,
            lo=lo,
            hi=hi,
        )
    names = list(ACTIVATIONS) if args.only == "all" else [n.strip() for n in args.only.split(",")]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:  # one panel per activation: at most len(ACTIVATIONS) panels
        raise CnnkitError.from_template(
            ("The '--only' option names each activation once. Got {repeated} more than once."),
            repeated=", ".join(repeated),
        )
    acts = [get_activation(n) for n in names]
    print(save_figure(activations_figure(acts, x_range=(lo, hi)), args.output))
