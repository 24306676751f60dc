"""`twinsearch mcp`"""

from __future__ import annotations

from twinsearch.cli.common import Collection, DataDir, QdrantUrl, errors_to_exit, settings_from


@errors_to_exit
def mcp(
    collection: Collection = None, data_dir: DataDir = None, qdrant_url: QdrantUrl = None
) -> None:
    """Serve search to agents over the Model Context Protocol, on stdin and stdout: tools
    `search`, `get` and `collections`, answering with the JSON `search --json`,
    `get --json` and `info --json` print."""
    import logging

    from twinsearch.errors import ConfigError

    try:
        from twinsearch.mcp_server import create_server
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"the MCP server needs the mcp package ({exc}); install it with "
            "pip install 'twinsearch[mcp]'"
        ) from None
    logging.basicConfig(level=logging.WARNING)  # on stderr: stdout is the protocol's
    settings = settings_from(collection=collection, data_dir=data_dir, qdrant_url=qdrant_url)
    from twinsearch.indexer.sources import read_again

    create_server(settings, read_again).run("stdio")
