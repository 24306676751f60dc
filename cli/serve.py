"""`twinsearch serve`"""

from __future__ import annotations

import signal
import socket
from typing import Annotated, Any

import typer

from twinsearch.cli.common import Collection, DataDir, QdrantUrl, err, errors_to_exit, settings_from
from twinsearch.errors import ConfigError

API_KEY_ENV = "TWINSEARCH_API_KEY"
BACKLOG = 2048
"""Connections waiting to be accepted, as uvicorn's default."""


@errors_to_exit
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on")] = 8000,
    collection: Collection = None,
    data_dir: DataDir = None,
    qdrant_url: QdrantUrl = None,
) -> None:
    """Serve search over HTTP: GET/POST /search, /collections, /health; schema at /openapi.json.

    Set TWINSEARCH_API_KEY to require that key on every request (X-API-Key or Bearer header).

    /health answers everyone, but says where the data lives only to callers with the key.
    """
    import os

    import uvicorn

    from twinsearch.api import Searchers, create_app, share_store

    settings = settings_from(collection=collection, data_dir=data_dir, qdrant_url=qdrant_url)
    api_key = os.environ.get(API_KEY_ENV) or None
    with listen(host, port) as sock:
        # Opened here, not as the app starts, so that a store it cannot open is one error
        # line, before "serving", rather than a traceback from uvicorn after it.
        searchers = Searchers(settings)
        app = create_app(settings, api_key, searchers)
        url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        if api_key:
            access = ", API key required"
        elif _reachable_from_outside(host):
            access = f", open to anyone who can reach it: {API_KEY_ENV} sets a key"
        else:
            access = ""
        err.print(
            f"serving {settings.qdrant_url or settings.data_dir} on {url} "
            f"(OpenAPI schema at /openapi.json{access}; Ctrl-C stops)",
            markup=False,
        )
        # uvicorn shuts down on Ctrl-C or SIGTERM, then raises the signal again with the
        # handlers found before it started: ours, which make it KeyboardInterrupt, so that
        # what this process recorded in the data folder goes too. (With Python's default
        # SIGINT handler, asyncio would take the signal for itself and, depending on timing,
        # swallow it.)
        for stop in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop, _interrupt)
        with share_store(searchers, settings, app) as (app, sockets):
            server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
            try:
                server.run(sockets=[sock, *sockets])
            except KeyboardInterrupt:  # uvicorn has shut down; it passes Ctrl-C on
                err.print("stopped", markup=False)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port``, bound as uvicorn binds its own; if it cannot
    be, ``ConfigError`` says which option to change."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ConfigError(_cannot_listen(host, port, exc)) from None
    return sock


def _reachable_from_outside(host: str) -> bool:
    import ipaddress

    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name
        return host != "localhost"


def _cannot_listen(host: str, port: int, exc: OSError) -> str:
    import errno

    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is in use; pick another with --port"
    if exc.errno == errno.EACCES:
        return f"port {port} on {host} needs privileges; pick one above 1023 with --port"
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return (
            f"cannot listen on {host!r}: {exc.strerror or exc}; pick an address of this machine "
            "with --host (127.0.0.1 for this machine alone, 0.0.0.0 for all)"
        )
    return f"cannot listen on {host} port {port}: {exc.strerror or exc}; check --host and --port"
