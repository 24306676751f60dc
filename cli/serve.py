"""`twinsearch serve`"""

from __future__ import annotations

from typing import Annotated

import typer

from twinsearch.cli.common import Collection, DataDir, QdrantUrl, err, errors_to_exit, settings_from

API_KEY_ENV = "TWINSEARCH_API_KEY"


@errors_to_exit
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on")] = 8000,
    collection: Collection = None,
    data_dir: DataDir = None,
    qdrant_url: QdrantUrl = None,
) -> None:
    """Serve search over HTTP: GET/POST /search, /collections, /health, OpenAPI at /docs.

    Set TWINSEARCH_API_KEY to require that key on every request (header X-API-Key).
    """
    import os

    import uvicorn

    from twinsearch.cli.api import create_app

    settings = settings_from(collection=collection, data_dir=data_dir, qdrant_url=qdrant_url)
    api_key = os.environ.get(API_KEY_ENV) or None
    err.print(
        f"serving {settings.qdrant_url or settings.data_dir} on http://{host}:{port} "
        f"(API docs at /docs{', API key required' if api_key else ''})",
        markup=False,
    )
    uvicorn.run(create_app(settings, api_key), host=host, port=port, log_level="warning")
