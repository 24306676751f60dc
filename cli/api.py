"""The HTTP API of `twinsearch serve`, with FastAPI.

Each collection's searcher (encoder and store) is opened on first use and kept, so a model
loads once however many requests follow; a name switched to another collection by a
re-index is followed on the next request. Requests run in FastAPI's thread pool. On the
embedded store they take turns, a few milliseconds each (the engine is one process's,
opened once); against a Qdrant server they run at once, and several API processes can
serve the same collections.

FastAPI reads the annotations of the endpoints below at run time: this module does not
postpone them, and is imported only by `twinsearch serve`.
"""

import hmac
import threading
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager, nullcontext
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from twinsearch._version import __version__
from twinsearch.cli.common import err
from twinsearch.errors import (
    CollectionLocked,
    CollectionNotFound,
    ConfigError,
    EncoderMismatch,
    TwinsearchError,
)
from twinsearch.settings import Settings

MAX_K = 1000


class Searchers:
    """One open searcher per collection, opened on first use, shared by all requests."""

    def __init__(self, settings: Settings) -> None:
        from twinsearch.cli.common import open_client

        self.settings = settings
        self._stack = ExitStack()
        self.client = self._stack.enter_context(open_client(settings))
        self._open: dict[str, Any] = {}
        self._opening = threading.Lock()
        # The embedded engine is used by one thread at a time; a server takes many.
        self.lock: Any = threading.Lock() if settings.qdrant_url is None else nullcontext()
        """Held for every use of the store."""

    def get(self, name: str) -> Any:
        """The searcher for what ``name`` stands for now: an alias switched by a re-index
        is followed on the next request."""
        store = self.client.collection(name)
        with self._opening:
            if store.name not in self._open:
                from twinsearch.cli.common import query_encoder
                from twinsearch.collections import open_for_search
                from twinsearch.search import Searcher

                encoder = query_encoder(self.settings, store)
                opened = open_for_search(self.client, name, encoder)
                self._open[store.name] = Searcher.for_store(opened, encoder)
            return self._open[store.name]

    def close(self) -> None:
        self._stack.close()


def create_app(settings: Settings, api_key: str | None = None) -> Any:
    """The HTTP API over ``settings``' store; ``api_key`` (if any) must come with each
    request as ``X-API-Key`` or ``Authorization: Bearer``."""
    state: dict[str, Searchers] = {}

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        state["searchers"] = Searchers(settings)
        try:
            yield
        finally:
            state.pop("searchers").close()

    app = FastAPI(
        title="twinsearch",
        version=__version__,
        description="Semantic document search with twin text encoders and Qdrant.",
        lifespan=lifespan,
    )

    class Hit(BaseModel):
        rank: int
        doc_id: str
        score: float
        title: str
        snippet: str
        source: str | None = None
        root: str | None = None
        chunk: int

    class SearchRequest(BaseModel):
        q: str = Field(min_length=1, description="What to look for, in plain words")
        k: int = Field(10, ge=1, le=MAX_K, description="Documents to return")
        collection: str | None = Field(None, description="Collection [default: the server's]")
        mode: str = Field("dense", pattern="^(dense|bm25|hybrid)$")
        where: list[str] = Field(
            default_factory=list, description="Filters as in the CLI's --where: KEY=VALUE, ..."
        )

    class Error(BaseModel):
        error: str

    statuses = [
        (CollectionNotFound, 404),
        (EncoderMismatch, 409),
        (CollectionLocked, 503),
        (ConfigError, 400),
        (TwinsearchError, 400),
    ]

    @app.exception_handler(TwinsearchError)
    async def _known(request: Request, exc: TwinsearchError) -> JSONResponse:
        status = next(code for kind, code in statuses if isinstance(exc, kind))
        return JSONResponse({"error": str(exc)}, status_code=status)

    def authorised(
        x_api_key: Annotated[str | None, Header()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> None:
        if api_key is None:
            return
        given = x_api_key or (authorization or "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            raise HTTPException(401, "missing or wrong API key (X-API-Key header)")

    def run_search(request: SearchRequest) -> list[dict[str, Any]]:
        from twinsearch.filters import parse_where

        if not request.q.strip():
            raise ConfigError("the query is empty; pass some words to search for")
        conditions = parse_where(request.where)
        searchers = state["searchers"]
        with searchers.lock:
            searcher = searchers.get(request.collection or settings.collection)
            hits = searcher.search(request.q, request.k, request.mode, conditions or None)
        return [hit.to_dict() for hit in hits]

    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": Error} for code in (400, 401, 404, 409, 503)
    }

    @app.get("/search", response_model=list[Hit], responses=errors)
    def search_get(
        q: Annotated[str, Query(min_length=1, description="What to look for")],
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
        collection: str | None = None,
        mode: Annotated[str, Query(pattern="^(dense|bm25|hybrid)$")] = "dense",
        where: Annotated[list[str] | None, Query()] = None,
        _: None = Depends(authorised),
    ) -> list[dict[str, Any]]:
        """The documents nearest in meaning to ``q``, best first, as `search --json` gives them."""
        return run_search(
            SearchRequest(q=q, k=k, collection=collection, mode=mode, where=where or [])
        )

    @app.post("/search", response_model=list[Hit], responses=errors)
    def search_post(request: SearchRequest, _: None = Depends(authorised)) -> list[dict[str, Any]]:
        """The same search with a JSON body."""
        return run_search(request)

    @app.get("/collections", responses=errors)
    def collections(_: None = Depends(authorised)) -> dict[str, Any]:
        """Each collection with its documents, chunks and model, as `info --json` lists them."""
        from twinsearch.cli.info import describe_all

        searchers = state["searchers"]
        with searchers.lock:
            return describe_all(searchers.client, close=False)

    @app.get("/health")
    def health() -> dict[str, str]:
        """Up, and where the data lives."""
        return {"status": "ok", "location": state["searchers"].client.location}

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        err.print(f"error: {type(exc).__name__}: {exc}", markup=False)
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)

    return app
