"""Where vectors live: the embedded Qdrant (a folder) or a Qdrant server (a URL)."""

from __future__ import annotations

from pathlib import Path

from twinsearch.errors import ConfigError
from twinsearch.stores.base import (
    SERVE_RECORD,
    Client,
    CollectionSpec,
    Condition,
    Filter,
    Match,
    Missing,
    Range,
    ServerOptions,
    Store,
    check_name,
)

__all__ = [
    "Client",
    "CollectionSpec",
    "Condition",
    "Filter",
    "Match",
    "Missing",
    "Range",
    "ServerOptions",
    "Store",
    "check_name",
    "connect",
]


def connect(
    *,
    data_dir: str | Path | None = None,
    url: str | None = None,
    api_key: str | None = None,
    server: ServerOptions | None = None,
    segment_mb: int | None = None,
) -> Client:
    """Exactly one of ``data_dir`` (embedded Qdrant Edge) or ``url`` (Qdrant server).

    ``segment_mb``: the embedded store's segment size for new collections (see ``edge``).
    While a `twinsearch serve` process holds ``data_dir``, its collections are reached
    through that process (see ``shared``).
    """
    if (data_dir is None) == (url is None):
        raise ConfigError("pass exactly one of data_dir or url")
    if url is not None:
        from twinsearch.stores.server import ServerClient

        return ServerClient(url, api_key=api_key, options=server or ServerOptions())
    folder = Path(data_dir).expanduser()  # type: ignore[arg-type]
    if (folder / SERVE_RECORD).exists():
        from twinsearch.stores import shared

        socket = shared.find(folder)
        if socket is not None:
            return shared.SharedClient(socket, folder)
    from twinsearch.stores.edge import EdgeClient

    return EdgeClient(folder, segment_mb=segment_mb)
