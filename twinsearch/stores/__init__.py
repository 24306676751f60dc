"""Where vectors live: the embedded Qdrant (a folder) or a Qdrant server (a URL)."""

from __future__ import annotations

from pathlib import Path

from twinsearch.stores.base import (
    Client,
    CollectionSpec,
    Condition,
    Filter,
    Match,
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
    """
    if (data_dir is None) == (url is None):
        raise ValueError("pass exactly one of data_dir or url")
    if url is not None:
        from twinsearch.stores.server import ServerClient

        return ServerClient(url, api_key=api_key, options=server or ServerOptions())
    from twinsearch.stores.edge import EdgeClient

    return EdgeClient(Path(data_dir), segment_mb=segment_mb)  # type: ignore[arg-type]
