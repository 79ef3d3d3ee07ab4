"""`cnnkit filter` (a kernel on an image) and `cnnkit kernels` (the comparison figure, the list)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cnnkit.cli.commands._common import add_json_flag, print_json, refuse_overwriting_input
from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import N_
from cnnkit.core.i18n import gettext as _

__all__ = [
    "FILTER_EPILOG",
    "KERNELS_EPILOG",
    "KERNEL_SYNTAX",
    "parse_kernel_list",
    "register",
    "run_filter",
    "run_kernels",
]

MAX_FIGURE_KERNELS = 48  # panels in one `cnnkit kernels` figure (the registry has 11)

KERNEL_SYNTAX = """\
kernel notation:
  NAME                    default parameters, e.g. sobel-x
  NAME:V1,V2              parameters in order, e.g. box:5, gaussian:5,1.4 (size 5, sigma 1.4)
  NAME:param=value,...    by name, e.g. gaussian:sigma=2
  `cnnkit kernels --list` shows every kernel, its parameters and its matrix.

boundary (how the border is filled so the output keeps the input size):
  symmetric  repeat the edge pixel (c b a | a b c d | d c b), SciPy's "symm" (the chapter's)
  zeros      zero padding
  reflect    mirror without the edge pixel (d c b | a b c d | c b a)
  replicate  extend the edge pixel (a a a | a b c d | d d d)
  circular   wrap around (b c d | a b c d | a b c)
"""

FILTER_EPILOG = (
    KERNEL_SYNTAX
    + """
display (how responses, which can be negative or above 255, become pixels):
  auto     abs for kernels whose entries sum to 0 (edges, derivatives), clip otherwise
  abs      |response| scaled so the strongest is white
  clip     round and clip to 0..255 (blur, sharpen, identity)
  minmax   stretch min..max to 0..255 (negative = dark, positive = bright)

examples:
  cnnkit filter photo.jpg --kernel sobel-x -o edges.png
  cnnkit filter photo.jpg --kernel gaussian:9,3 -o blurred.jpg
"""
)

KERNELS_EPILOG = (
    KERNEL_SYNTAX
    + """
Without IMAGE the chapter's 6x7 test pattern (section 1.2) is used, drawn as large squares with
each value written in. Images are filtered in grayscale. Kernels whose entries sum to 0 are
drawn in red (positive) and blue (negative) around white (0).

examples:
  cnnkit kernels -o kernels.png
  cnnkit kernels --kernels identity,sobel-x,sobel-y,box,sharpen -o chapter.png
  cnnkit kernels photo.jpg -o photo-kernels.png
  cnnkit kernels --list --json
"""
)


def register(subparsers: Any) -> None:
    from cnnkit.cli.main import HelpFormatter

    p = subparsers.add_parser(
        "filter",
        help="filter an image with a classic kernel (Sobel, Gaussian, ...)",
        description="Cross-correlate an image (PNG, JPEG, ...) with a named kernel and save the "
        "response as an image of the same size. Colour images are filtered per channel.",
        epilog=FILTER_EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("image", metavar="IMAGE", help="input image (any format Pillow reads)")
    p.add_argument("--kernel", "-k", required=True, metavar="SPEC", help="kernel, e.g. sobel-x")
    p.add_argument("-o", "--output", required=True, metavar="PATH", help="output image")
    _add_boundary(p)
    p.add_argument(
        "--display",
        choices=("auto", "abs", "clip", "minmax"),
        default="auto",
        help="how the response is mapped to 0..255",
    )
    p.add_argument("--gray", action="store_true", help="convert a colour image to gray first")
    p.set_defaults(func=run_filter)

    q = subparsers.add_parser(
        "kernels",
        help="compare classic kernels on an image (the chapter's figure), or list them",
        description="Draw the original image and each kernel's response, titled (section 1.2's "
        "comparison figure), or list the kernel registry with --list.",
        epilog=KERNELS_EPILOG,
        formatter_class=HelpFormatter,
    )
    q.add_argument(
        "image",
        metavar="IMAGE",
        nargs="?",
        help="image to filter (default: the chapter's 6x7 test pattern)",
    )
    q.add_argument("-o", "--output", metavar="PATH", help="output figure (.png, .pdf, .svg, ...)")
    q.add_argument(
        "--kernels",
        metavar="SPECS",
        default="all",
        help="comma-separated kernels to compare, or all registered ones; use ';' between "
        "kernels when a spec has commas, e.g. 'box:5;gaussian:5,1.4'",
    )
    _add_boundary(q)
    q.add_argument("--list", action="store_true", help="list the kernels and their matrices")
    add_json_flag(q)
    q.set_defaults(func=run_kernels)


def _add_boundary(p: argparse.ArgumentParser) -> None:
    # no `choices=` from cnnkit.imaging.kernels: building the parser must not import NumPy;
    # filter_image checks the value and lists the allowed ones
    p.add_argument(
        "--boundary", metavar="MODE", default="symmetric", help="how the border is filled (below)"
    )


def run_filter(args: argparse.Namespace) -> None:
    from cnnkit.imaging.images import image_format, read_image, write_image
    from cnnkit.imaging.kernels import filter_image, kernel_from_spec, sums_to_zero

    image_format(args.output)  # an unknown suffix fails before any work
    refuse_overwriting_input(args.image, args.output)
    kernel = kernel_from_spec(args.kernel)
    image = read_image(args.image, mode="L" if args.gray else "auto")
    response = filter_image(image, kernel, boundary=args.boundary)
    display = args.display
    if display == "auto":
        display = "abs" if sums_to_zero(kernel) else "clip"
    print(write_image(args.output, response, normalize=display))


def parse_kernel_list(text: str) -> list[str]:
    """`"box,sobel-x"` or `"box:5;gaussian:5,1.4"` -> specs (';' wins when present)."""
    sep = ";" if ";" in text else ","
    specs = [s.strip() for s in text.split(sep) if s.strip()]
    if not specs:
        raise CnnkitError.from_template(
            "The '--kernels' option needs at least one kernel. Got {text!r}.", text=text
        )
    return specs


def run_kernels(args: argparse.Namespace) -> None:
    from cnnkit.imaging.kernels import chapter_test_pattern, kernel_responses, list_kernels

    if args.list:
        ignored = [
            flag
            for flag, given in (
                ("IMAGE", args.image is not None),
                ("-o/--output", args.output is not None),
                ("--kernels", args.kernels != "all"),
                ("--boundary", args.boundary != "symmetric"),
            )
            if given
        ]
        if ignored:
            if len(ignored) > 1:
                raise CnnkitError.from_template(
                    "--list only lists the kernels; it takes no {ignored}. Drop them, or drop "
                    "--list to draw the figure.",
                    ignored=", ".join(ignored),
                )
            raise CnnkitError.from_template(
                "--list only lists the kernels; it takes no {ignored}. Drop it, or drop --list "
                "to draw the figure.",
                ignored=ignored[0],
            )
        _print_kernel_list(list_kernels(), as_json=args.json)
        return
    if args.output is None:
        raise CnnkitError("-o/--output is required to draw the figure (or use --list)")
    if args.json:
        raise CnnkitError("--json goes with --list")

    from cnnkit.imaging.images import read_image
    from cnnkit.render.figures import check_figure_path, kernel_comparison_figure, save_figure
    from cnnkit.render.fonts import figure_text  # English where no Japanese font can draw it

    check_figure_path(args.output)  # an unknown suffix fails before any work
    refuse_overwriting_input(args.image, args.output)
    all_names = [k.name for k in list_kernels()]
    specs = all_names if args.kernels == "all" else parse_kernel_list(args.kernels)
    if len(specs) > MAX_FIGURE_KERNELS:
        raise CnnkitError.from_template(
            (
                "The '--kernels' option takes at most {max_figure_kernels} kernels (one "
                "panel each). Got {n_specs:,}."
            ),
            max_figure_kernels=MAX_FIGURE_KERNELS,
            n_specs=len(specs),
        )
    if args.image is None:
        image, title = (
            chapter_test_pattern(),
            figure_text(N_("The chapter's 6x7 test pattern (section 1.2)")),
        )
    else:
        image = read_image(args.image, mode="L")
        title = figure_text(N_("Kernels on {name}")).format(name=Path(args.image).name)
    responses = kernel_responses(image, specs, boundary=args.boundary)
    # the boundary mode is named as it is typed (--boundary symmetric)
    title = figure_text(N_("{title}, boundary={boundary}")).format(
        title=title, boundary=args.boundary
    )
    fig = kernel_comparison_figure(image, responses, title=title)
    print(save_figure(fig, args.output))


def _format_matrix(k: Any) -> list[str]:
    import numpy as np

    integral = bool(np.all(k == np.round(k)))
    cells = [[f"{v:.0f}" if integral else f"{v:.4f}" for v in row] for row in k]
    width = max(len(c) for row in cells for c in row)
    return ["[" + " ".join(c.rjust(width) for c in row) + "]" for row in cells]


def _print_kernel_list(infos: list[Any], *, as_json: bool) -> None:
    from cnnkit.core.i18n import translate
    from cnnkit.imaging.kernels import get_kernel

    if as_json:
        print_json(
            [
                {
                    "name": i.name,
                    "description": i.description,
                    "params": i.params,
                    "matrix": get_kernel(i.name),
                }
                for i in infos
            ]
        )
        return
    for i in infos:
        params = ", ".join(f"{k}={v}" for k, v in i.params.items())
        print(f"{i.name}{f' ({params})' if params else ''}: {translate(i.description)}")
        for line in _format_matrix(get_kernel(i.name)):
            print(f"    {line}")
        print()
    print(_("Parameters on the command line: NAME:V1,V2 or NAME:param=value, e.g. gaussian:5,1.4"))
