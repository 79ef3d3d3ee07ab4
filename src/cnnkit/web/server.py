"""Run the playground with uvicorn: bind first (a port in use is one clear error), print the URL,
serve until Ctrl-C (uvicorn shuts down cleanly on SIGINT/SIGTERM), return.

torch runs one thread per request (`torch.set_num_threads(1)`): on a small machine, requests
in parallel on one thread each beat one request on many threads (p95 ~10x better measured
with 1 than with 2). Concurrency is bounded by the app (one request per model replica).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys
import threading
import time
import webbrowser
from typing import Any, TextIO

from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import gettext as _

__all__ = ["PortInUse", "bind", "is_loopback", "serve", "url_for"]


class PortInUse(CnnkitError):
    """The port is taken (or not ours to bind)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_for(host: str, port: int) -> str:
    shown = host
    if host in ("0.0.0.0", "::"):
        shown = "127.0.0.1"
    elif ":" in host:
        shown = f"[{host}]"
    return f"http://{shown}:{port}/"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one); PortInUse / CnnkitError else."""
    if not 0 <= port <= 65535:
        raise CnnkitError.from_template(
            "The '--port' option must be from 0 to 65535. Got {port}.", port=port
        )
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise CnnkitError.from_template(
            "cannot bind to host {host!r}: {strerror}", host=host, strerror=e.strerror
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if sys.platform != "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
        if family in (socket.AF_INET, socket.AF_INET6):  # answers go out at once (no Nagle)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        if e.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortInUse.from_template(
                (
                    "port {port} on {host} is already in use (or not allowed); choose "
                    "another with --port"
                ),
                port=port,
                host=host,
            ) from None
        raise CnnkitError.from_template(
            "cannot listen on {host}:{port}: {reason}",
            host=host,
            port=port,
            reason=e.strerror or e,
        ) from None
    sock.set_inheritable(True)
    return sock


def serve(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    open_browser: bool = False,
    out: TextIO | None = None,
) -> int:
    """Serve `app` until interrupted; prints the URL to `out` (default stdout).

    `workers` > 1: that many server processes share the socket (each its own interpreter
    and model: Python's GIL lets one process use about one core); `app` must then be an
    import string "module:factory" (uvicorn's factory=True), such as
    "cnnkit.web.app:app_from_environment".
    """
    import torch
    import uvicorn

    out = out or sys.stdout
    if workers < 1:
        raise CnnkitError.from_template(
            "The '--workers' option must be a positive int. Got {workers}.", workers=workers
        )
    if workers > 1 and not isinstance(app, str):
        raise CnnkitError("serve(workers > 1) needs the app as an import string 'module:factory'")
    torch.set_num_threads(1)
    sock = bind(host, port)
    url = url_for(host, sock.getsockname()[1])
    if not is_loopback(host):
        warning = _(
            "warning: serving on {host}, reachable from other machines; the playground has "
            "no authentication (use --host 127.0.0.1 to keep it local)"
        )
        print(warning.format(host=host), file=sys.stderr)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5,
        factory=isinstance(app, str), workers=workers,
    )  # fmt: skip
    server = uvicorn.Server(config)

    def ready() -> None:
        print(_("cnnkit playground: {url}  (Ctrl-C to stop)").format(url=url), file=out, flush=True)
        if open_browser:
            webbrowser.open(url)

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.02)
        if server.started:
            ready()

    try:
        if workers == 1:
            threading.Thread(target=announce, name="cnnkit-announce", daemon=True).start()
            server.run(sockets=[sock])
        else:
            from uvicorn.supervisors import Multiprocess

            ready()  # the socket already listens: connections wait for the workers
            Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass  # uvicorn has shut down cleanly, then re-raised the Ctrl-C it caught
    finally:
        sock.close()
    print(_("cnnkit playground: stopped"), file=out, flush=True)
    return 0
