"""A Qdrant server or cluster, through qdrant-client (imported only when a URL is used).

``url=":memory:"`` runs qdrant-client's in-process engine: same API, no server; the
contract tests use it as a stand-in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from twinsearch.errors import (
    ConfigError,
    StoreError,
    first_line,
    translated,
)
from twinsearch.nouns import Point, ScoredPoint, SparseVector
from twinsearch.stores.base import (
    DENSE,
    HNSW_EF,
    RRF_K,
    SCROLL_PAGE,
    SPARSE,
    CollectionSpec,
    Condition,
    Filter,
    Match,
    Missing,
    ServerOptions,
    check_name,
    not_found,
    to_point,
    to_scored,
)

UPLOAD_BATCH = 256
RETRIES = 5
RETRY_FIRST_DELAY = 0.5
T = TypeVar("T")


def _transient(exc: BaseException) -> bool:
    status = getattr(exc, "status_code", None)
    if status is not None:
        return int(status) in (429, 500, 502, 503, 504)
    transient_names = ("ResponseHandlingException", "ConnectError", "Timeout", "ProtocolError")
    return isinstance(exc, ConnectionError | TimeoutError) or any(
        name in type(exc).__name__ for name in transient_names
    )


def _consistency(models: Any, value: str | None) -> Any:
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    kinds = {k.value: k for k in models.ReadConsistencyType}
    if value not in kinds:
        raise ConfigError(
            f"read_consistency {value!r}: use {', '.join(sorted(kinds))} or a number of replicas"
        )
    return kinds[value]


class ServerStore:
    def __init__(self, client: ServerClient, name: str) -> None:
        self.name = check_name(name)
        self._client = client
        self._qc = client.qc
        self._models = client.models

    def require(self) -> None:
        if not self.exists():
            raise not_found(self.name, f"on {self._client.location}")

    def _filter(self, filter: Filter | None) -> Any:
        if not filter:
            return None
        m = self._models
        return m.Filter(must=[self._condition(c) for c in filter])

    def _condition(self, cond: Condition) -> Any:
        m = self._models
        if isinstance(cond, Missing):
            return m.IsEmptyCondition(is_empty=m.PayloadField(key=cond.key))
        if isinstance(cond, Match):
            if isinstance(cond.value, tuple):
                return m.FieldCondition(key=cond.key, match=m.MatchAny(any=list(cond.value)))
            return m.FieldCondition(key=cond.key, match=m.MatchValue(value=cond.value))
        bounds = {"gte": cond.gte, "gt": cond.gt, "lte": cond.lte, "lt": cond.lt}
        kind = m.DatetimeRange if cond.is_datetime else m.Range
        return m.FieldCondition(key=cond.key, range=kind(**bounds))

    def exists(self) -> bool:
        with self._client.translate():
            return bool(self._qc.collection_exists(self.name))

    def create(self, spec: CollectionSpec) -> None:
        m = self._models
        if self._client.in_process:
            layout: dict[str, Any] = {}
        else:
            shards, replicas, writes = self._client.options.layout(self._client.nodes())
            layout = {
                "shard_number": shards,
                "replication_factor": replicas,
                "write_consistency_factor": writes,
            }
        with self._client.translate():
            self._qc.create_collection(
                self.name,
                # Vectors on disk, memory-mapped: the OS page cache keeps what searches use.
                vectors_config={
                    DENSE: m.VectorParams(size=spec.dim, distance=m.Distance.COSINE, on_disk=True)
                },
                sparse_vectors_config={
                    SPARSE: m.SparseVectorParams(
                        modifier=m.Modifier.IDF, index=m.SparseIndexParams(on_disk=True)
                    )
                },
                on_disk_payload=True,
                metadata=dict(spec.metadata),
                **layout,
            )
            if self._client.in_process:
                return  # its exact scan has no use for payload indexes, and says so
            for field in spec.keyword_fields:
                self._qc.create_payload_index(self.name, field, m.PayloadSchemaType.KEYWORD)
            for field in spec.integer_fields:
                self._qc.create_payload_index(self.name, field, m.PayloadSchemaType.INTEGER)
            for field in spec.datetime_fields:
                self._qc.create_payload_index(self.name, field, m.PayloadSchemaType.DATETIME)

    def metadata(self) -> dict[str, Any]:
        self.require()
        with self._client.translate():
            return dict(self._qc.get_collection(self.name).config.metadata or {})

    def update_metadata(self, changes: Mapping[str, Any]) -> None:
        with self._client.translate():
            self._qc.update_collection(self.name, metadata={**self.metadata(), **changes})

    def upsert(self, points: Sequence[Point]) -> None:
        """Write in batches of ``UPLOAD_BATCH``, ``options.parallel`` at a time, each retried
        with backoff while the server is unreachable or overloaded. Point ids are stable,
        so a batch written twice is written once."""
        if not points:
            return
        m = self._models
        structs = [
            m.PointStruct(id=p.id, vector=self._vectors(p), payload=p.payload) for p in points
        ]
        batches = [structs[i : i + UPLOAD_BATCH] for i in range(0, len(structs), UPLOAD_BATCH)]

        def send(batch: list[Any]) -> None:
            self._client.retrying(lambda: self._qc.upsert(self.name, points=batch, wait=True))

        with self._client.translate():
            # qdrant-client's in-process engine takes one writer at a time.
            serial = self._client.in_process or self._client.options.parallel <= 1
            if len(batches) == 1 or serial:
                for batch in batches:
                    send(batch)
                return
            with ThreadPoolExecutor(self._client.options.parallel) as pool:
                for done in [pool.submit(send, batch) for batch in batches]:
                    done.result()

    def delete(self, filter: Filter) -> None:
        with self._client.translate():
            self._qc.delete(
                self.name,
                points_selector=self._models.FilterSelector(filter=self._filter(filter)),
                wait=True,
            )

    def delete_points(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self._client.translate():
            self._qc.delete(
                self.name,
                points_selector=self._models.PointIdsList(points=list(ids)),
                wait=True,
            )

    def set_payload(self, payload: Mapping[str, Any], filter: Filter) -> None:
        with self._client.translate():
            self._qc.set_payload(
                self.name, payload=dict(payload), points=self._filter(filter), wait=True
            )

    def _sparse(self, vector: SparseVector) -> Any:
        return self._models.SparseVector(indices=vector.indices, values=vector.values)

    def _vectors(self, point: Point) -> dict[str, Any]:
        vectors: dict[str, Any] = {DENSE: [float(x) for x in point.vector]}
        if point.sparse is not None:
            vectors[SPARSE] = self._sparse(point.sparse)
        return vectors

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
        m = self._models
        where = self._filter(filter)
        params = None
        if self._client.in_process:
            pass  # it always scans exactly, and warns about any search parameters
        elif exact:
            ignore = m.QuantizationSearchParams(ignore=True)
            params = m.SearchParams(exact=True, quantization=ignore)
        else:
            # As the embedded store: on a quantized collection, twice the asked number
            # found on the int8 copies, rescored on the originals.
            rescored = m.QuantizationSearchParams(rescore=True, oversampling=2.0)
            acorn = m.AcornSearchParams(enable=True) if filter else None
            params = m.SearchParams(hnsw_ef=HNSW_EF, acorn=acorn, quantization=rescored)
        queries = []
        if dense is not None:
            queries.append(([float(x) for x in dense], DENSE, params))
        if sparse is not None:
            queries.append((self._sparse(sparse), SPARSE, None))
        if len(queries) == 1:
            [(query, using, params)] = queries
            request: dict[str, Any] = {"query": query, "using": using, "search_params": params}
        else:
            request = {
                "prefetch": [
                    m.Prefetch(query=q, using=u, limit=k, filter=where, params=p)
                    for q, u, p in queries
                ],
                "query": m.RrfQuery(rrf=m.Rrf(k=RRF_K)),
            }
        with self._client.translate():
            found = self._qc.query_points(
                self.name,
                limit=k,
                query_filter=where,
                with_payload=True,
                with_vectors=[DENSE] if with_vectors else False,
                consistency=self._client.read_consistency,
                **request,
            ).points
        return [to_scored(p.id, p.score, p.payload, p.vector, with_vectors) for p in found]

    def count(self, filter: Filter | None = None) -> int:
        with self._client.translate():
            return int(
                self._qc.count(self.name, count_filter=self._filter(filter), exact=True).count
            )

    def scroll(
        self, fields: Sequence[str], filter: Filter | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        offset = None
        while True:
            with self._client.translate():
                records, offset = self._qc.scroll(
                    self.name,
                    scroll_filter=self._filter(filter),
                    limit=SCROLL_PAGE,
                    offset=offset,
                    with_payload=list(fields),
                    with_vectors=False,
                )
            for record in records:
                yield str(record.id), dict(record.payload or {})
            if offset is None:
                return

    def points(self) -> Iterator[list[Point]]:
        offset = None
        while True:
            with self._client.translate():
                records, offset = self._qc.scroll(
                    self.name,
                    limit=SCROLL_PAGE,
                    offset=offset,
                    with_payload=True,
                    with_vectors=True,
                )
            yield [to_point(r.id, r.vector, r.payload) for r in records]  # type: ignore[arg-type]
            if offset is None:
                return

    def open(self) -> None:
        """Nothing to open: the connection belongs to the client."""

    def finish(self) -> None:
        """The server builds its indexes in the background; writes were already awaited."""

    def segments(self) -> int:
        with self._client.translate():
            return int(self._qc.get_collection(self.name).segments_count or 0)

    def optimize(self, merged_mb: int | None = None, quantize: bool = False) -> tuple[int, int]:
        """A Qdrant server's optimizers merge segments on their own, in the background,
        within its `max_segment_size`. ``quantize`` has it keep int8 copies of the vectors
        in RAM (the originals where the collection keeps them), built in the background
        too. qdrant-client's in-process engine scans exactly and has no use for them."""
        if quantize and not self._client.in_process:
            m = self._models
            scalar = m.ScalarQuantizationConfig(
                type=m.ScalarType.INT8, quantile=0.99, always_ram=True
            )
            with self._client.translate():
                self._qc.update_collection(
                    self.name, quantization_config=m.ScalarQuantization(scalar=scalar)
                )
        segments = self.segments()
        return segments, segments

    def quantized(self) -> bool:
        if self._client.in_process:
            return False
        with self._client.translate():
            return self._qc.get_collection(self.name).config.quantization_config is not None

    def index_field(self, key: str, kind: str) -> None:
        from qdrant_client import models as m

        if self._client.in_process:
            return  # its exact scan has no use for payload indexes, as in create
        with self._client.translate():
            self._qc.create_payload_index(self.name, key, m.PayloadSchemaType(kind))

    def close(self) -> None:
        """The connection belongs to the client."""


class ServerClient:
    aliased = True

    def __init__(
        self, url: str, api_key: str | None = None, options: ServerOptions | None = None
    ) -> None:
        from qdrant_client import QdrantClient, models

        self.models = models
        self.location = url
        self.in_process = url == ":memory:"
        self.options = options or ServerOptions()
        self.read_consistency = _consistency(models, self.options.read_consistency)
        try:
            if url == ":memory:":
                self.qc = QdrantClient(location=":memory:")
            else:
                # Its version check runs in a thread of its own, whose failure on an
                # unreachable server would print a raw warning; the first request says it.
                self.qc = QdrantClient(
                    url=url,
                    api_key=api_key,
                    timeout=self.options.timeout,
                    check_compatibility=False,
                )
        except Exception as exc:
            raise StoreError(f"bad Qdrant URL {url!r}: {exc}") from exc

    def retrying(self, call: Callable[[], T]) -> T:
        """``call()``, tried again after 0.5, 1, 2, 4 and 8 s while the failure is one a
        restarting or overloaded server gives."""
        delay = RETRY_FIRST_DELAY
        for attempt in range(RETRIES + 1):
            try:
                return call()
            except Exception as exc:
                if attempt == RETRIES or not _transient(exc):
                    raise
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def translate(self) -> AbstractContextManager[None]:
        """What becomes of qdrant-client's failures: a server that does not answer (a
        connection refused or failed, also as qdrant-client wraps it), or any other."""
        import httpx
        from qdrant_client.http.exceptions import ResponseHandlingException

        def unreachable(exc: BaseException) -> StoreError:
            return StoreError(
                f"cannot reach Qdrant at {self.location}: {first_line(exc)}; start it "
                "(`docker compose up -d`) or check the server's URL"
            )

        def failed(exc: BaseException) -> StoreError:
            return StoreError(f"Qdrant at {self.location} failed: {first_line(exc)[:300]}")

        refused = (ConnectionError, httpx.ConnectError)

        def handling(exc: BaseException) -> StoreError:
            source = getattr(exc, "source", None)
            return (unreachable if isinstance(source, refused) else failed)(exc)

        return translated(
            [
                (refused, unreachable),
                (ResponseHandlingException, handling),
                (Exception, failed),
            ]
        )

    def nodes(self) -> int:
        """Peers in the server's cluster; 1 when it runs alone."""
        with self.translate():
            status = self.qc.cluster_status()
        peers = getattr(status, "peers", None)
        return len(peers) if peers else 1

    def collections(self) -> list[str]:
        with self.translate():
            return sorted(c.name for c in self.qc.get_collections().collections)

    def collection(self, name: str, resolve: bool = True) -> ServerStore:
        return ServerStore(self, self.aliases().get(name, name) if resolve else name)

    def aliases(self) -> dict[str, str]:
        with self.translate():
            return {a.alias_name: a.collection_name for a in self.qc.get_aliases().aliases}

    def switch_alias(self, alias: str, target: str) -> str | None:
        m = self.models
        check_name(alias)
        self.collection(target).require()
        previous = self.aliases().get(alias)
        if previous is None and alias in self.collections():
            raise StoreError(
                f"{alias!r} is a collection on {self.location}, so it cannot become an alias; "
                f"search {target!r} by name, or drop {alias!r} first"
            )
        operations: list[Any] = []
        if previous is not None:
            operations.append(m.DeleteAliasOperation(delete_alias=m.DeleteAlias(alias_name=alias)))
        operations.append(
            m.CreateAliasOperation(
                create_alias=m.CreateAlias(collection_name=target, alias_name=alias)
            )
        )
        with self.translate():
            # One request: Qdrant applies the operations atomically.
            self.qc.update_collection_aliases(change_aliases_operations=operations)
        return previous

    def drop(self, name: str) -> None:
        store = self.collection(name)
        store.require()
        with self.translate():
            self.qc.delete_collection(store.name)

    def close(self) -> None:
        with self.translate():
            self.qc.close()
