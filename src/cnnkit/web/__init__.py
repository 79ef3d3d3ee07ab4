"""The playground: `cnnkit serve` — a local web page on your own model (layer `web`).

Modules: `model` (the checkpoint, loaded once, and its traced forward pass), `api` (predict,
one unit, model info: pure functions), `explore` (convolution and receptive-field explorers),
`app` (the Starlette app, `create_app`), `server` (uvicorn on 127.0.0.1, Ctrl-C to stop),
`static/` (the page). Starlette and uvicorn are imported only when a server is made.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(checkpoint: Any, **kwargs: Any) -> Any:
    """See `cnnkit.web.app.create_app`."""
    from cnnkit.web.app import create_app as _create_app

    return _create_app(checkpoint, **kwargs)
