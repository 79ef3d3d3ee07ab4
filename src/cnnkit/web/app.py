"""The playground's HTTP layer: a Starlette app over `cnnkit.web.api` and `cnnkit.web.explore`.

`create_app(checkpoint)` loads the checkpoint once and returns the ASGI app. Routes (the
contract: docs/playground.md, "API"):

    GET  /               index.html, <html lang> from Accept-Language (ja or en)
    GET  /static/...     the page's files (package data)
    GET  /fonts/ipaexg.ttf  the Japanese font (from the matplotlib-fontja package)
    GET  /api/model      POST /api/predict   POST /api/unit
    GET  /api/kernels    POST /api/conv      GET|POST /api/rf

Safety: request bodies are limited (Content-Length checked, streamed bytes counted) -> 413;
every error is `{"error": "..."}` with a 4xx code (500 for a bug, the server keeps serving);
every response carries `Content-Security-Policy: default-src 'self'; img-src 'self' data: blob:`
and `X-Content-Type-Options: nosniff`. No request names a file: static files come from the
package's folder only (Starlette's StaticFiles refuses paths outside it).
Model calls run in worker threads, at most one per model replica at a time (the replicas'
pool blocks the others); the explorers, pure NumPy, run at most two at a time.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import Message, error_message, translate
from cnnkit.render.fonts import bundled_font_path
from cnnkit.web.api import BodyTooLarge, UnsupportedMedia

__all__ = ["CSP", "ENV_CHECKPOINT", "ENV_DEVICE", "ENV_LANG", "MAX_BODY", "app_from_environment",
           "create_app", "preferred_language"]  # fmt: skip

MAX_BODY = 4 * 1024 * 1024  # bytes
CSP = "default-src 'self'; img-src 'self' data: blob:"
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
IMAGE_TYPES = ("image/png", "image/jpeg", "application/octet-stream", "")
LANGUAGES = ("en", "ja")
# For server worker processes (`cnnkit serve --workers N`): what each one loads.
ENV_CHECKPOINT, ENV_SOURCE = "CNNKIT_SERVE_CHECKPOINT", "CNNKIT_SERVE_SOURCE"
ENV_DEVICE = "CNNKIT_SERVE_DEVICE"  # the resolved --device, for worker processes
ENV_LANG = "CNNKIT_SERVE_LANG"  # the language asked for with --lang, for worker processes
log = logging.getLogger("cnnkit.web")


def static_dir() -> Path:
    return Path(str(resources.files("cnnkit") / "web" / "static"))


def preferred_language(header: str | None) -> str:
    """ "ja" if Japanese is the best match of an Accept-Language header, else "en"."""
    best, best_q = "en", 0.0
    for part in (header or "").split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        m = re.search(r"q=([0-9.]+)", params)
        if m:
            try:
                q = float(m.group(1))
            except ValueError:
                q = 0.0
        lang = tag.strip().lower().split("-")[0]
        if lang in LANGUAGES and q > best_q:
            best, best_q = lang, q
    return best


class SecurityHeaders:
    """ASGI middleware: the security headers on every HTTP response; 413 on a declared
    Content-Length over the limit, before the body is read."""

    def __init__(self, app: Any, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [
                    (k, v) for k, v in SECURITY_HEADERS if k not in names
                ]
            await send(message)

        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                too_big = False
            if too_big:
                language = preferred_language(
                    headers.get(b"accept-language", b"").decode("latin-1")
                )
                response = error_response(413, _too_large(self.max_body), language)
                await response(scope, receive, send_with_headers)
                return
        await self.app(scope, receive, send_with_headers)


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge.from_template(
        "the request body is larger than {mb} MB", mb=limit // (1024 * 1024)
    )


async def read_body(request: Any, limit: int) -> bytes:
    """The body, counting streamed bytes (a chunked upload has no Content-Length)."""
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Any, limit: int) -> Any:
    body = await read_body(request, limit)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise CnnkitError.from_template("the body must be JSON: {e}", e=e) from None
    except RecursionError:
        raise CnnkitError("the body must be JSON of reasonable depth (nested too deeply)") from None


def encoded(fn: Callable[..., Any], *, maps: bool = False) -> Callable[..., bytes]:
    """`fn`'s JSON answer encoded where it was computed (a worker thread, not the event loop).

    `maps`: the answer holds u8 maps (predict, unit): their base64 texts are copied into the
    JSON unescaped (`cnnkit.web.api.to_json`); other answers (the explorers' nested lists of
    numbers) go straight to `json.dumps`, which is faster for them than walking them first.
    """
    from cnnkit.web.api import to_json

    def call(*args: Any, **kwargs: Any) -> bytes:
        obj = fn(*args, **kwargs)
        if maps:
            return to_json(obj)
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8")

    return call


def json_bytes(body: bytes) -> Any:
    from starlette.responses import Response

    return Response(body, media_type="application/json")


def error_response(status: int, error: str | CnnkitError, language: str = "en") -> Any:
    """`{"error": the English line, "message": the line in `language`}` with `status`: the
    English stays the same for scripts whatever the reader's language (the page shows
    `message`, in the language it asked for with Accept-Language)."""
    from starlette.responses import JSONResponse

    def line(text: str) -> str:
        return text.strip().splitlines()[0] if text.strip() else ""

    english = line(str(error))
    if isinstance(error, CnnkitError):
        localized = line(error_message(error, language))
    else:
        localized = line(translate(error, language))
    return JSONResponse({"error": english, "message": localized}, status_code=status)


def _language(request: Any) -> str:
    return preferred_language(request.headers.get("accept-language"))


def _status(e: Exception) -> int:
    if isinstance(e, BodyTooLarge):
        return 413
    if isinstance(e, UnsupportedMedia):
        return 415
    return 422


Handler = Callable[[Any], Awaitable[Any]]


def guarded(handler: Handler) -> Handler:
    """Every exception from `handler` -> `{"error": ...}`: CnnkitError 4xx, anything else 500."""

    async def endpoint(request: Any) -> Any:
        try:
            return await handler(request)
        except CnnkitError as e:
            return error_response(_status(e), e, _language(request))
        except Exception as e:  # a bug: say so, log it, keep serving
            log.exception("error while answering %s %s", request.method, request.url.path)
            return error_response(500, f"internal error: {type(e).__name__}: {e}")

    return endpoint


class Endpoints:
    """The routes' handlers over one loaded `Playground` (each handler: request -> response).

    Thread-side bounds (not anyio limiters: those belong to one event loop, and a test client
    may run a loop per request): a model call waits in its worker thread for a free replica
    (`Playground.replica`), an explorer call for one of two slots.
    """

    def __init__(self, pg: Any, max_body: int, language: str | None = None) -> None:
        from cnnkit.web import api, explore

        self.pg = pg
        self.language = language  # the page's language when the server was told one
        self.max_body = max_body
        self.info = api.model_info(pg)
        self.kernels = explore.kernels()
        self.folder = static_dir()
        self.numpy_slots = threading.BoundedSemaphore(2)
        self.font_file = bundled_font_path()  # the figures' font, for the page's Japanese

    async def on_model(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        import anyio

        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    async def on_numpy(self, fn: Callable[..., Any], *args: Any) -> Any:
        import anyio

        def bounded() -> Any:
            with self.numpy_slots:
                return fn(*args)

        return await anyio.to_thread.run_sync(bounded)

    async def index(self, request: Any) -> Any:
        from starlette.responses import HTMLResponse

        html = (self.folder / "index.html").read_text(encoding="utf-8")
        lang = self.language or preferred_language(request.headers.get("accept-language"))
        html = re.sub(r"<html([^>]*?)\slang=\"[^\"]*\"", rf'<html\1 lang="{lang}"', html, count=1)
        if f'lang="{lang}"' not in html:
            html = html.replace("<html", f'<html lang="{lang}"', 1)
        return HTMLResponse(html, headers={"Vary": "Accept-Language"})

    async def font(self, request: Any) -> Any:
        """GET /fonts/ipaexg.ttf: the one font file the page uses (a fixed file, no name
        from the request)."""
        from starlette.responses import FileResponse

        if self.font_file is None:
            message = Message("no Japanese font installed (matplotlib-fontja)")
            return error_response(404, message, _language(request))
        return FileResponse(
            self.font_file, media_type="font/ttf", headers={"Cache-Control": "max-age=86400"}
        )

    async def model(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse(self.info)

    async def predict(self, request: Any) -> Any:
        from cnnkit.web import api

        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in IMAGE_TYPES:
            raise UnsupportedMedia.from_template(
                "send the image as image/png or image/jpeg (got Content-Type {ctype!r})",
                ctype=ctype,
            )
        layers = request.query_params.get("layers", "1") not in ("0", "false", "no")
        body = await read_body(request, self.max_body)
        return json_bytes(
            await self.on_model(encoded(api.predict, maps=True), self.pg, body, layers=layers)
        )

    async def unit(self, request: Any) -> Any:
        from cnnkit.web import api

        body = await read_json(request, self.max_body)
        return json_bytes(await self.on_model(encoded(api.unit, maps=True), self.pg, body))

    async def kernel_list(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse(self.kernels)

    async def conv(self, request: Any) -> Any:
        from cnnkit.web import explore

        body = await read_json(request, self.max_body)
        return json_bytes(await self.on_numpy(encoded(explore.conv), body))

    async def rf(self, request: Any) -> Any:
        from cnnkit.web import explore

        if request.method == "GET":
            return json_bytes(encoded(explore.rf)(None))
        body = await read_json(request, self.max_body)
        return json_bytes(await self.on_numpy(encoded(explore.rf), body))


async def not_found(request: Any, exc: Any) -> Any:
    code = getattr(exc, "status_code", 404)
    language, path = _language(request), request.url.path
    if code == 405:
        message = Message("{method} is not allowed on {path}", method=request.method, path=path)
        return error_response(405, message, language)
    if code == 404:
        return error_response(
            404, Message("no such page or API route: {path}", path=path), language
        )
    return error_response(code, str(getattr(exc, "detail", "")) or Message("bad request"), language)


async def server_error(request: Any, exc: Exception) -> Any:
    return error_response(500, f"internal error: {type(exc).__name__}")


def create_app(
    checkpoint: str | os.PathLike[str] | Any,
    *,
    source: str | None = None,
    max_body: int = MAX_BODY,
    replicas: int = 2,
    device: str = "cpu",
    language: str | None = None,
) -> Any:
    """The playground app for a checkpoint path (or an already loaded `Playground`).

    `source` is what /api/model reports as the model's origin ("bundled", or the path);
    `device`: where the model runs (auto, cpu, cuda, mps); `language` ("ja" or "en"): the
    page's language, else the browser's Accept-Language decides (the page's own switch,
    once used, wins over both).
    """
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from cnnkit.web.model import Playground

    if isinstance(checkpoint, Playground):
        pg = checkpoint
    else:
        pg = Playground.load(checkpoint, source=source, replicas=replicas, device=device)
    e = Endpoints(pg, max_body, language if language in LANGUAGES else None)
    routes = [
        Route("/", guarded(e.index), methods=["GET"]),
        Route("/fonts/ipaexg.ttf", guarded(e.font), methods=["GET"]),
        Route("/api/model", guarded(e.model), methods=["GET"]),
        Route("/api/predict", guarded(e.predict), methods=["POST"]),
        Route("/api/unit", guarded(e.unit), methods=["POST"]),
        Route("/api/kernels", guarded(e.kernel_list), methods=["GET"]),
        Route("/api/conv", guarded(e.conv), methods=["POST"]),
        Route("/api/rf", guarded(e.rf), methods=["GET", "POST"]),
        Mount("/static", app=StaticFiles(directory=e.folder), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders, max_body=max_body)],
        exception_handlers={404: not_found, 405: not_found, 500: server_error},
    )
    app.state.playground = pg
    return app


def app_from_environment() -> Any:
    """The app for the checkpoint named by $CNNKIT_SERVE_CHECKPOINT (a uvicorn factory, for
    worker processes; `cnnkit serve` sets it to the file it has already checked)."""
    path = os.environ.get(ENV_CHECKPOINT)
    if not path:
        raise CnnkitError.from_template(
            "${env_checkpoint} is not set (the checkpoint to serve)", env_checkpoint=ENV_CHECKPOINT
        )
    device = os.environ.get(ENV_DEVICE) or "cpu"
    source, language = os.environ.get(ENV_SOURCE) or path, os.environ.get(ENV_LANG) or None
    return create_app(path, source=source, device=device, language=language)
