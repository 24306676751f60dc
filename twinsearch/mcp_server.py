"""twinsearch as a Model Context Protocol server over stdio (`twinsearch mcp`), with the
official SDK: tools an agent calls to search the collections and list them, answering with
the JSON the command line prints (`search --json`, `info --json`).

stdout carries the protocol alone: what would be said to a person goes to the log (stderr).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from twinsearch.documents import Reread
from twinsearch.errors import TwinsearchError
from twinsearch.session import Searchers
from twinsearch.settings import Settings

log = logging.getLogger("twinsearch.mcp")

INSTRUCTIONS = (
    "Semantic search over the user's own documents. `search` finds the documents nearest "
    "in meaning to a query (mode dense), by keywords (bm25) or both (hybrid), each with "
    "the passage that matched and where it is; `get` fetches a document or lines of it by "
    "the id or FILE:LINE a search gave; `collections` lists what is indexed."
)


def create_server(settings: Settings, reread: Reread | None = None) -> Any:
    """The MCP server over ``settings``' store; collections open on first use and stay open.
    With ``reread`` (how indexing reads a file now), also the ``get`` tool."""
    from mcp.server.mcpserver import MCPServer

    server: Any = MCPServer("twinsearch", instructions=INSTRUCTIONS)
    searchers: dict[str, Searchers] = {}

    def opened() -> Searchers:
        if "it" not in searchers:
            searchers["it"] = Searchers(settings)
        return searchers["it"]

    @server.tool(structured_output=False)
    @_answers_as_json
    def search(
        query: str,
        k: int = 10,
        mode: str | None = None,
        where: list[str] | None = None,
        collection: str | None = None,
    ) -> Any:
        """The k documents (1 to 1000) nearest to query, best first: id, title, source
        file, score, the matching passage. mode: dense (meaning), bm25 (keywords) or hybrid
        (both; the default where the collection has BM25 vectors). where: filters such as
        "ext=.md" or "modified>=2026-01-01", all of which must hold. collection: which one
        (default: the server's)."""
        from twinsearch.filters import parse_where

        # k, mode and the query are checked by the Searcher, whose errors name the fix.
        searching = opened()
        with searching.lock:
            searcher = searching.get(collection or settings.collection)
            hits = searcher.search(query, k, mode, parse_where(where or []) or None)
        return [hit.to_dict() for hit in hits]

    if reread is not None:
        read_again = reread

        @server.tool(structured_output=False)
        @_answers_as_json
        def get(
            id: str,
            line: int | None = None,
            lines: int | None = None,
            collection: str | None = None,
        ) -> Any:
            """A document by the id (or FILE:LINE) a search gave: its whole text, or `lines`
            lines (20 by default) from `line`; from its file while that still holds what
            was indexed, else from the index ("from" and "why" say which)."""
            from twinsearch.documents import described, fetch_at

            searching = opened()
            with searching.lock:
                store = searching.client.collection(collection or settings.collection)
                store.require()
                fetched, at = fetch_at(store, id, read_again)
            return described(fetched, line if line is not None else at, lines)

    @server.tool(structured_output=False)
    @_answers_as_json
    def collections() -> Any:
        """Where the data lives and each collection: documents, chunks, model."""
        from twinsearch.collection import describe_all

        searching = opened()
        with searching.lock:
            return describe_all(searching.client, close=False)

    return server


def _answers_as_json(tool: Callable[..., Any]) -> Callable[..., str]:
    """``tool``'s answer as the JSON text the command line prints; a failure twinsearch
    expects reaches the caller as a tool error with its one-line message (what to do)."""
    from mcp.server.mcpserver.exceptions import ToolError

    @functools.wraps(tool)
    def answer(*args: Any, **kwargs: Any) -> str:
        try:
            return json.dumps(tool(*args, **kwargs), ensure_ascii=False, indent=2)
        except TwinsearchError as exc:
            raise ToolError(str(exc)) from None

    return answer
