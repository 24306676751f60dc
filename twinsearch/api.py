"""The HTTP API (`twinsearch serve`), with FastAPI.

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
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from twinsearch._version import __version__
from twinsearch.errors import (
    CollectionLocked,
    CollectionNotFound,
    ConfigError,
    EncoderMismatch,
    TwinsearchError,
)
from twinsearch.nouns import MAX_K, MODES, SearchMode
from twinsearch.session import Searchers
from twinsearch.settings import Settings

log = logging.getLogger("twinsearch.api")
NOT_BLANK = r"\S"
"""``q`` holds a word: a blank query has nothing to search for."""
WHERE_HELP = (
    "Filters, all of which must hold: KEY=VALUE, KEY>=VALUE, KEY<VALUE (dates as 2026-01-31), "
    "or KEY=A,B for any of several values"
)
EXPECTED = {
    "q": "must be the words to search for",
    "k": f"must be a whole number from 1 to {MAX_K}",
    "collection": "must be a collection name",
    "mode": f"must be {', '.join(MODES[:-1])} or {MODES[-1]}",
    "where": 'must be a list such as ["ext=.md"]',
}
"""What each search parameter takes, said when a request gets it wrong."""
ERRORS = {
    400: "A filter or collection name that cannot work",
    401: "Missing or wrong API key",
    404: "No collection of that name",
    409: "The collection was built with another model than the server's",
    422: "A parameter missing, of the wrong type, or out of range",
    500: "A failure the server did not expect",
    503: "The collection is in use by another process",
}
MODE_HELP = (
    "dense: the model; bm25: keywords; hybrid: both, fused by rank [default: hybrid, or "
    "dense for a collection without BM25 vectors]"
)


class Error(BaseModel):
    """Every error, whatever its status: one line that says what went wrong."""

    error: str


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for these error statuses, all with the one error body."""
    return {code: {"model": Error, "description": ERRORS[code]} for code in codes}


def _api_terms(message: str) -> str:
    """The library's messages name CLI options; over HTTP they are request parameters."""
    return message.replace("--where", "where").replace("--mode ", "mode=")


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:59] + "…"


def _problem(error: dict[str, Any]) -> str:
    """One validation error of a request, in the request's own terms."""
    names = [part for part in error["loc"][1:] if isinstance(part, str)]
    name, kind = (names[0] if names else "body"), error["type"]
    if kind == "json_invalid":
        return f"body: not valid JSON ({error.get('ctx', {}).get('error', 'unreadable')})"
    if kind == "missing" and name == "body":
        return 'body: required, a JSON object such as {"q": "tides"}'
    if kind == "missing":
        return f"{name}: required"
    if kind == "extra_forbidden":
        return f"{name}: unknown field; the fields are {', '.join(EXPECTED)}"
    if name == "body":
        sent_as = ", sent as application/json" if isinstance(error.get("input"), bytes) else ""
        return f'body: must be a JSON object such as {{"q": "tides"}}{sent_as}'
    if name == "q" and kind in ("string_too_short", "string_pattern_mismatch"):
        return "q: must not be empty"
    if name in EXPECTED:
        return f"{name}: {EXPECTED[name]}, got {_shown(error.get('input'))}"
    return f"{name}: {error['msg']}"


def _validation_message(errors: Sequence[Any]) -> str:
    return "; ".join(dict.fromkeys(_problem(error) for error in errors))


def _errors_in_one_shape(app: Any) -> None:
    """Every error the app answers, expected or not, as ``{"error": "one line"}``."""
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
        return JSONResponse({"error": _api_terms(str(exc))}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _validation_message(exc.errors())}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        path = request.url.path
        if exc.status_code == 404 and exc.detail == "Not Found":
            message = f"no endpoint {path}; the endpoints are in /openapi.json"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {path}; /openapi.json lists the methods"
        else:
            message = str(exc.detail)
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s on %s: %s", type(exc).__name__, request.url.path, exc, exc_info=exc)
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)


class Hit(BaseModel):
    rank: int
    doc_id: str
    score: float
    title: str
    snippet: str = Field(description="The best chunk's text")
    passage: str = Field(
        "", description="The one to three sentences of the best chunk that best answer q"
    )
    highlights: list[tuple[int, int]] = Field(
        [], description="Character spans of passage that are terms of q"
    )
    source: str | None = None
    root: str | None = None
    chunk: int
    line: int | None = Field(None, description="Line of the file where the passage starts")
    column: int | None = Field(None, description="Its column there, in characters, from 1")
    end_line: int | None = Field(None, description="Line of the file where the passage ends")
    mode: SearchMode = SearchMode.dense
    similarity: float | None = Field(
        None, description="Cosine similarity of the best passage to q (dense, hybrid)"
    )
    terms_matched: int | None = Field(
        None, description="Terms of q in the best passage (bm25, hybrid)"
    )
    query_terms: int | None = Field(None, description="Terms of q, after stopwords")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: str = Field(pattern=NOT_BLANK, description="What to look for, in plain words")
    k: int = Field(10, ge=1, le=MAX_K, description="Documents to return")
    collection: str | None = Field(None, description="Collection [default: the server's]")
    mode: SearchMode | None = Field(None, description=MODE_HELP)
    where: list[str] = Field(default_factory=list, description=WHERE_HELP)


class Health(BaseModel):
    status: str
    location: str | None = Field(None, description="Where the data lives; only with the key")


def create_app(
    settings: Settings, api_key: str | None = None, searchers: Searchers | None = None
) -> Any:
    """The HTTP API over ``settings``' store; ``api_key`` (if any) must come with each
    request as ``X-API-Key`` or ``Authorization: Bearer``. ``searchers``, if given, is the
    store already open (closed with the app); else the app opens it as it starts."""
    state: dict[str, Searchers] = {}

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        state["searchers"] = searchers or Searchers(settings)
        try:
            yield
        finally:
            state.pop("searchers").close()

    app = FastAPI(
        title="twinsearch",
        version=__version__,
        description="Semantic document search with twin text encoders and Qdrant.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load from a CDN: blank pages offline
        redoc_url=None,
        responses=_responses(422, 500),
    )
    _errors_in_one_shape(app)
    has_key, authorised = _access(api_key)
    _search_routes(app, lambda: state["searchers"], settings.collection, authorised)
    _store_routes(app, lambda: state["searchers"], has_key, authorised)
    return app


def _access(api_key: str | None) -> tuple[Callable[..., bool], Callable[..., None]]:
    """Two dependencies: whether the caller sent the key (or none is set), and a guard that
    refuses one that did not."""

    def has_key(
        x_api_key: Annotated[str | None, Header(description="The server's API key, if set")] = None,
        authorization: Annotated[str | None, Header(description="Bearer KEY")] = None,
    ) -> bool:
        if api_key is None:
            return True
        scheme, _, token = (authorization or "").partition(" ")
        given = x_api_key or (token.strip() if scheme.lower() == "bearer" else "")
        return hmac.compare_digest(given.encode(), api_key.encode())

    def authorised(allowed: Annotated[bool, Depends(has_key)]) -> None:
        if not allowed:
            raise HTTPException(
                401,
                "missing or wrong API key; send it in an X-API-Key header "
                "or as Authorization: Bearer KEY",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return has_key, authorised


def _search_routes(
    app: Any, searchers: Callable[[], Searchers], default: str, authorised: Callable[..., None]
) -> None:
    """GET and POST /search."""

    def run_search(request: SearchRequest) -> list[dict[str, Any]]:
        from twinsearch.filters import parse_where

        conditions = parse_where(request.where)
        opened = searchers()
        with opened.lock:
            searcher = opened.get(request.collection or default)
            hits = searcher.search(request.q, request.k, request.mode, conditions or None)
        return [hit.to_dict() for hit in hits]

    searching = _responses(400, 401, 404, 409, 503)

    @app.get("/search", response_model=list[Hit], responses=searching)
    def search_get(
        q: Annotated[str, Query(pattern=NOT_BLANK, description="What to look for")],
        k: Annotated[int, Query(ge=1, le=MAX_K, description="Documents to return")] = 10,
        collection: Annotated[
            str | None, Query(description="Collection [default: the server's]")
        ] = None,
        mode: Annotated[SearchMode | None, Query(description=MODE_HELP)] = None,
        where: Annotated[list[str] | None, Query(description=WHERE_HELP + "; repeatable")] = None,
        _: None = Depends(authorised),
    ) -> list[dict[str, Any]]:
        """The documents nearest in meaning to ``q``, best first, as `search --json` gives them."""
        return run_search(
            SearchRequest(q=q, k=k, collection=collection, mode=mode, where=where or [])
        )

    @app.post("/search", response_model=list[Hit], responses=searching)
    def search_post(request: SearchRequest, _: None = Depends(authorised)) -> list[dict[str, Any]]:
        """The same search with a JSON body."""
        return run_search(request)


def _store_routes(
    app: Any,
    searchers: Callable[[], Searchers],
    has_key: Callable[..., bool],
    authorised: Callable[..., None],
) -> None:
    """/collections and /health."""

    @app.get("/collections", responses=_responses(401, 503))
    def collections(_: None = Depends(authorised)) -> dict[str, Any]:
        """Each collection with its documents, chunks and model, as `info --json` lists them."""
        from twinsearch.collection import describe_all

        opened = searchers()
        with opened.lock:
            return describe_all(opened.client, close=False)

    @app.get("/health", response_model=Health, response_model_exclude_none=True)
    def health(allowed: Annotated[bool, Depends(has_key)]) -> dict[str, str]:
        """Up; and, to callers with the key, where the data lives. Open to all, for load
        balancers."""
        if not allowed:
            return {"status": "ok"}
        return {"status": "ok", "location": searchers().client.location}


@contextmanager
def share_store(
    searchers: Searchers, settings: Settings, app: Any
) -> Iterator[tuple[Any, list[Any]]]:
    """While this process serves an embedded store, other twinsearch commands on the same
    data folder reach its collections through it (see ``twinsearch.stores.shared``): the
    app, which also answers them on a Unix socket of their own, and that socket."""
    from twinsearch.stores import shared

    if settings.qdrant_url is not None or isinstance(searchers.client, shared.SharedClient):
        yield app, []
        return
    local = shared.make_socket(settings.data_dir)
    path = local.getsockname()
    store_app = shared.asgi_app(shared.StoreService(searchers.client, searchers.lock))

    async def dispatch(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("server") == (path, None):
            await store_app(scope, receive, send)
        else:
            await app(scope, receive, send)

    unregister = shared.register(settings.data_dir, local)
    try:
        yield dispatch, [local]
    finally:
        unregister()
        local.close()
