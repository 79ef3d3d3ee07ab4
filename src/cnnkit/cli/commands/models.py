"""`cnnkit models`: the model registry, with input shapes and parameter counts."""

from __future__ import annotations

import argparse

from cnnkit.cli.commands._common import add_json_flag, print_json
from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import gettext as _
from cnnkit.core.text import ljust, rjust

__all__ = ["models_cli", "register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    from cnnkit.cli.main import HelpFormatter

    parser = subparsers.add_parser(
        "models",
        help="list the registry's models: input shape and parameter counts",
        description="List the models that `cnnkit train --model` and `cnnkit summary` accept, "
        "with the (C, H, W) input each expects and its parameters, counted layer by layer "
        "from the layers' sizes.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "pattern", nargs="?", default="*", metavar="PATTERN", help="shell-style name filter"
    )
    parser.add_argument("--layers", action="store_true", help="also show per-layer counts")
    add_json_flag(parser)
    parser.set_defaults(func=models_cli)


def models_cli(args: argparse.Namespace) -> None:
    from cnnkit.models.registry import list_models, model_info

    infos = [model_info(name) for name in list_models(args.pattern)]
    if not infos:  # an unknown name, or a pattern that finds nothing: say what there is
        raise CnnkitError.from_template(
            ("The 'PATTERN' argument matches no model. Got {pattern!r}; known models: {items}."),
            pattern=args.pattern,
            items=", ".join(list_models()),
        )
    if args.json:
        print_json(infos)
        return
    width = max(len(info.name) for info in infos)
    heads = (_("model"), _("input (C, H, W)"), _("params"), _("description"))
    print(f"{ljust(heads[0], width)}  {ljust(heads[1], 16)} {rjust(heads[2], 10)}  {heads[3]}")
    for info in infos:
        shape = "×".join(str(d) for d in info.input_shape)
        description = _(info.description)  # the registry's English, translated when known
        print(f"{info.name:<{width}}  {shape:<16} {info.total_params:>10,}  {description}")
        if args.layers:
            for layer in info.layers:
                print(
                    f"  {layer.name:<{width + 14}} {layer.kind:<8} {layer.total:>10,}"
                    + _("  (weight {weight} + bias {bias})").format(
                        weight=f"{layer.weight:,}", bias=f"{layer.bias:,}"
                    )
                )
