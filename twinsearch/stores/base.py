"""The store seam: one Qdrant collection of chunk vectors, behind a small protocol.

A ``Client`` is a place that holds collections (a folder for the embedded engine, a URL for
a server); a ``Store`` is one collection in it. Both backends pass the same contract tests.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from twinsearch.errors import CollectionNotFound, ConfigError
from twinsearch.nouns import Point, ScoredPoint, SparseVector

DENSE = "dense"
SPARSE = "bm25"
HNSW_EF = 128
"""Candidates an HNSW search keeps: recall@10 of 0.99 or more on real 384-dimensional
vectors at 100k points. Filtered searches also use ACORN, which explores the filtered
graph: HNSW alone loses recall under selective filters (0.67-0.84 measured)."""
FIELD_KINDS = ("keyword", "integer", "float", "bool", "datetime")
"""Payload index kinds a user field may get (`twinsearch optimize --field`)."""
SCROLL_PAGE = 2048
"""Points per page when reading a collection through."""
SERVE_RECORD = "serve.json"
"""In a data folder while a `twinsearch serve` process holds it: how to reach that process."""
RRF_K = 60
"""Reciprocal rank fusion constant, as in Cormack et al. (2009)."""


@dataclass(frozen=True)
class Match:
    """Payload field ``key`` equals ``value``, or any of them when ``value`` is a tuple."""

    key: str
    value: str | int | bool | tuple[str, ...] | tuple[int, ...]


@dataclass(frozen=True)
class Range:
    """Payload field ``key`` within the given bounds: numbers, or RFC 3339 date-times
    (strings) for a field indexed as a date-time."""

    key: str
    gte: float | str | None = None
    gt: float | str | None = None
    lte: float | str | None = None
    lt: float | str | None = None

    @property
    def is_datetime(self) -> bool:
        return any(isinstance(v, str) for v in (self.gte, self.gt, self.lte, self.lt))


@dataclass(frozen=True)
class Missing:
    """Payload field ``key`` is absent (or null, or an empty list)."""

    key: str


Condition = Match | Range | Missing
Filter = Sequence[Condition]
"""All conditions must hold."""


@dataclass(frozen=True)
class ServerOptions:
    """How a Qdrant server spreads and guards a collection; None picks by cluster size."""

    shards: int | None = None
    replicas: int | None = None
    write_consistency: int | None = None
    read_consistency: str | None = None
    timeout: int = 30
    parallel: int = 4
    """Upload batches in flight at once."""

    def layout(self, nodes: int) -> tuple[int, int, int]:
        """(shards, replicas, write consistency) for a cluster of ``nodes``: on one node a
        single shard; on several, two shards per node (room to rebalance onto new nodes)
        and two copies of each, so one node can fail without losing data or searches."""
        shards = self.shards or (1 if nodes <= 1 else 2 * nodes)
        replicas = self.replicas or (1 if nodes <= 1 else 2)
        return shards, min(replicas, max(nodes, 1)), self.write_consistency or 1


@dataclass(frozen=True)
class CollectionSpec:
    dim: int
    metadata: Mapping[str, Any]
    distance: str = "cosine"
    keyword_fields: tuple[str, ...] = ("doc_id", "root", "source", "ext")
    integer_fields: tuple[str, ...] = ("chunk",)
    datetime_fields: tuple[str, ...] = ("modified",)


COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


VERSION_SEP = "__"


def versioned_name(name: str, fingerprint: str) -> str:
    """The collection a re-index of ``name`` with another model builds before the switch:
    distinct for every (name, model), within the 64 characters names may have."""
    suffix = f"{VERSION_SEP}{fingerprint[:12]}"
    if len(name) + len(suffix) <= 64:
        return name + suffix
    digest = hashlib.blake2b(name.encode(), digest_size=4).hexdigest()
    return f"{name[: 64 - len(suffix) - len(digest) - 1]}-{digest}{suffix}"


def to_point(id: Any, vectors: Mapping[str, Any], payload: Mapping[str, Any] | None) -> Point:
    """A point read back from either engine: named dense and sparse vectors."""
    import numpy as np

    sparse = vectors.get(SPARSE)
    return Point(
        str(id),
        np.asarray(vectors[DENSE], dtype=np.float32),
        dict(payload or {}),
        SparseVector(list(sparse.indices), list(sparse.values)) if sparse is not None else None,
    )


def not_found(name: str, location: str) -> CollectionNotFound:
    """The error for a collection ``name`` that ``location`` (a folder, a URL) lacks."""
    return CollectionNotFound(
        f"no collection {name!r} {location}; "
        "run `twinsearch index PATH` first, or see `twinsearch info` for what exists"
    )


def to_scored(id: Any, score: float, payload: Any, vectors: Any, with_vectors: bool) -> ScoredPoint:
    """A search result from either engine, with its dense vector if it was asked for."""
    vector = cast(Mapping[str, Any], vectors)[DENSE] if with_vectors else None
    return ScoredPoint(str(id), float(score), dict(payload or {}), vector)


_leaving_open = False


def leave_open_at_exit() -> None:
    """Say that this process ends once its command is done (the command line): the
    embedded store then leaves the collections it closes open, so that what they read
    stays in the page cache for the next process (see ``LEFT_OPEN_AT_MOST`` in edge.py)."""
    global _leaving_open
    _leaving_open = True


def leaving_open() -> bool:
    return _leaving_open


def check_name(name: str) -> str:
    if not COLLECTION_NAME.match(name) or ".." in name:
        raise ConfigError(
            f"bad collection name {name!r}: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return name


class Store(Protocol):
    name: str

    def exists(self) -> bool: ...

    def require(self) -> None:
        """Raise ``CollectionNotFound``, naming the fix, unless the collection exists."""
        ...

    def create(self, spec: CollectionSpec) -> None:
        """Create the collection; it must not exist yet."""
        ...

    def metadata(self) -> dict[str, Any]:
        """What ``create`` recorded; raises ``CollectionNotFound``."""
        ...

    def update_metadata(self, changes: Mapping[str, Any]) -> None:
        """Merge ``changes`` into the recorded metadata."""
        ...

    def upsert(self, points: Sequence[Point]) -> None: ...

    def delete(self, filter: Filter) -> None: ...

    def delete_points(self, ids: Sequence[str]) -> None:
        """Delete the points with these ids (absent ones are ignored)."""
        ...

    def set_payload(self, payload: Mapping[str, Any], filter: Filter) -> None:
        """Set these payload fields on every point matching ``filter``; vectors untouched."""
        ...

    def search(
        self,
        k: int,
        *,
        dense: Sequence[float] | None = None,
        sparse: SparseVector | None = None,
        filter: Filter | None = None,
        exact: bool = False,
        with_vectors: bool = False,
    ) -> list[ScoredPoint]:
        """The ``k`` nearest points by the dense vector, by BM25 terms, or by both fused
        with reciprocal rank fusion; at least one of ``dense`` and ``sparse``. ``exact``
        scans every dense vector instead of walking the HNSW graph; ``with_vectors`` returns
        each point's dense vector too."""
        ...

    def count(self, filter: Filter | None = None) -> int: ...

    def scroll(
        self, fields: Sequence[str], filter: Filter | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every point (matching ``filter``): its id and the named payload fields."""
        ...

    def points(self) -> Iterator[list[Point]]:
        """Every point, vectors and whole payload included, a page at a time."""
        ...

    def open(self) -> None:
        """Open now what would otherwise open on first use."""
        ...

    def finish(self) -> None:
        """Called after a bulk write: make it durable and searchable at full speed."""
        ...

    def segments(self) -> int:
        """The number of segments the engine holds the collection in."""
        ...

    def optimize(self, merged_mb: int | None = None, quantize: bool = False) -> tuple[int, int]:
        """Merge the collection's segments into fewer, of up to ``merged_mb`` MB of dense
        vectors each: every point kept. ``quantize``: from then on, also keep int8 copies of
        the vectors, which searches walk the graph on and rescore on the originals. The
        number of segments before and after."""
        ...

    def quantized(self) -> bool:
        """Whether the collection keeps int8 copies of its vectors to search on."""
        ...

    def index_field(self, key: str, kind: str) -> None:
        """Build a payload index on ``key``, of a kind in ``FIELD_KINDS``: filters on it
        then read the index instead of every payload."""
        ...

    def close(self) -> None: ...


class Client(Protocol):
    location: str
    """Where the data lives, for people: a folder or a URL."""
    aliased: bool
    """New collections are created as ``versioned_name`` behind an alias of their name, so
    a re-index can later switch it (a server, whose aliases cannot shadow a collection)."""

    def collections(self) -> list[str]: ...

    def collection(self, name: str, resolve: bool = True) -> Store:
        """The collection ``name``, or the one it is an alias of (unless ``resolve`` is off)."""
        ...

    def drop(self, name: str) -> None: ...

    def aliases(self) -> dict[str, str]:
        """Alias -> the collection it stands for. ``collection(alias)`` opens the target."""
        ...

    def switch_alias(self, alias: str, target: str) -> str | None:
        """Point ``alias`` at collection ``target`` in one step; the previous target."""
        ...

    def close(self) -> None: ...
