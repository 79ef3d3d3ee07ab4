"""`cnnkit serve [CHECKPOINT|RUN_DIR]`: the playground in the browser on a trained model."""

from __future__ import annotations

import argparse
import sys
from typing import Any

EPILOG = """\
With no argument, the newest run under ./runs (by its checkpoint's time), else the small
SimpleCNN shipped with cnnkit. The server listens on 127.0.0.1 only unless --host says
otherwise; it has no authentication, so a warning is printed when it is reachable from
other machines. Ctrl-C stops it.

examples:
  cnnkit serve                           # newest run, or the bundled model
  cnnkit serve runs/mnist-simple-cnn-... # a run folder
  cnnkit serve model.pt --port 8080 --open
"""


def register(subparsers: Any) -> None:
    from cnnkit.cli.commands._common import add_device_flag, positive_int
    from cnnkit.cli.main import HelpFormatter

    p = subparsers.add_parser(
        "serve",
        help="the playground: draw a digit, watch every layer (local web page)",
        description="A local web page on a trained model: draw or upload a digit and see the "
        "prediction, every layer's feature maps, each unit's receptive field and saliency, a "
        "convolution explorer and a receptive-field explorer.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "checkpoint",
        metavar="CHECKPOINT|RUN_DIR",
        nargs="?",
        default=None,
        help="a checkpoint file or a run folder (default: newest run, else the bundled model)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free one)")
    p.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="server processes (each with its own copy of the model; about one core each)",
    )
    p.add_argument("--open", action="store_true", help="open the page in the web browser")
    add_device_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from cnnkit.cli.commands._common import state_device
    from cnnkit.core.i18n import gettext as _
    from cnnkit.models.device import resolve_device
    from cnnkit.web.app import ENV_CHECKPOINT, ENV_DEVICE, ENV_LANG, ENV_SOURCE, create_app
    from cnnkit.web.model import find_checkpoint
    from cnnkit.web.server import bind, serve

    device = resolve_device(args.device, func="serve")
    path, source = find_checkpoint(args.checkpoint)
    bind(args.host, args.port).close()  # a port in use fails before the model loads
    language = getattr(args, "chosen_language", None)  # --lang / CNNKIT_LANG: the page's default
    app = create_app(path, source=source, device=device, language=language)  # loads it once
    line = _("model: {name} from {source}").format(name=app.state.playground.name, source=source)
    print(line, file=sys.stdout, flush=True)
    state_device(args.device, device)
    if args.workers > 1:
        os.environ[ENV_CHECKPOINT], os.environ[ENV_SOURCE] = str(path), source
        os.environ[ENV_DEVICE], os.environ[ENV_LANG] = device, language or ""
        app = "cnnkit.web.app:app_from_environment"
    return serve(app, host=args.host, port=args.port, workers=args.workers, open_browser=args.open)
