"""The embedded store: Qdrant Edge, the Qdrant engine in-process, one shard per collection.

Layout under the data folder::

    collections/<name>/collection.json   metadata (encoder fingerprint, chunking, version)
    collections/<name>/shard/            the Qdrant Edge shard
    collections/<name>/lock              held by the one process that has the shard open

A shard is held open by one process at a time; a second opener gets ``CollectionLocked``.

Shards keep no write-ahead log. What is written becomes durable when it is flushed: every
``FLUSH_EVERY`` points or ``FLUSH_SECONDS``, and at the end of a run (``finish``), each
flush a commit point, as in Lucene. A run killed in between loses only what it wrote since
the last one, which the indexer's next run writes again, since it plans from what the
store holds. Without the log, opening a collection reads no log back (a third less time
at 100k chunks), and a collection takes 96 MB less disk.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, cast

import qdrant_edge as qe

from twinsearch.errors import (
    CollectionLocked,
    StoreError,
    Translation,
    first_line,
    translated,
)
from twinsearch.nouns import Point, ScoredPoint, SparseVector
from twinsearch.stores.base import (
    COLLECTION_NAME,
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
    check_name,
    leaving_open,
    not_found,
    to_point,
    to_scored,
)

METADATA_FILE = "collection.json"
LOCK_FILE = "lock"
ALIASES_FILE = "aliases.json"
# A segment holds at most this much dense vector data, in KiB: about 42k chunks of a
# 384-dimensional model (the `segment_mb` setting changes it for new collections, at 1000
# KiB to its MB). Qdrant's `max_segment_size`, which takes it, is documented in kilobytes
# but counted in KiB. Writes
# fill one segment at a time; once full it is sealed: built into an immutable segment with
# its HNSW graph, in memory bounded by its own size, however large the collection. A
# smaller bound saves memory while indexing but costs searches, which visit every segment,
# and opening each costs time of its own, most of it in its payload indexes. At 100k
# chunks, a quarter of this bound took indexing's peak memory from 511 to 232 MiB but cold
# searches from 0.49 to 0.64 s, and warm ones from 7 to 12 ms.
SEGMENT_KIB = 64_000
# At the end of a run, the last, partly filled segment is sealed as well if it holds more
# than this (about 2.6k chunks of a 384-dimensional model). A smaller one stays unindexed,
# which an exact scan searches in a millisecond or two, and takes the next run's writes.
TAIL_KIB = 4_000
FLUSH_EVERY = 5000
FLUSH_SECONDS = 10.0
# `twinsearch optimize` merges sealed segments into segments of at most this much dense
# vector data, in KiB (about 260k chunks of a 384-dimensional model): a million chunks in
# four. Searches visit every segment and opening one reads its payload indexes, so fewer
# segments make cold and warm searches faster; the merge, in a process of its own, takes
# memory that grows with this bound, which writes never reach (they seal at
# ``SEGMENT_KIB``).
MERGED_KIB = 400_000
# Closing a shard, or letting it go, makes the engine advise the kernel to drop the
# collection's files from the page cache. Each `twinsearch search` is a process of its own,
# so each read the collection back from disk: at a million chunks, most of a cold search's
# 0.8 s. A process about to end (`leave_open_at_exit`: the command line) leaves its shards
# open instead: flushed, its lock released, never used again, unmapped by the kernel when
# the process ends, so what it read stays cached for the next one, as any file read
# would. At most this many (another close drops its shard, and with it what the cache holds
# of its files), so that a long-running command that opens a collection again and again
# leaves no more than that.
LEFT_OPEN_AT_MOST = 8
_left_open: list[Path] = []


def _leave_open(path: Path, shard: Any) -> bool:
    if not leaving_open() or len(_left_open) >= LEFT_OPEN_AT_MOST:
        return False
    import ctypes

    # A reference that is never given back: not even the interpreter's exit drops it.
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(shard))
    _left_open.append(path)
    return True


# A quantized collection (`twinsearch optimize --quantize`) walks its graph on int8 copies
# of the vectors, then scores twice the asked number again on the originals: at a million
# chunks, recall@10 of the store's top-10 against an exact top-10 was 0.87-0.91 without
# the rescoring, 1.00 with it (300 queries, oversampling 2). A collection
# that is not quantized ignores the setting; an exact scan reads only the originals.
_RESCORED = qe.QuantizationSearchParams(rescore=True, oversampling=2.0)
_DENSE_PARAMS = qe.SearchParams(hnsw_ef=HNSW_EF, quantization=_RESCORED)
_EXACT = qe.SearchParams(exact=True, quantization=qe.QuantizationSearchParams(ignore=True))
_FILTERED_PARAMS = qe.SearchParams(
    hnsw_ef=HNSW_EF, acorn=qe.AcornSearchParams(enable=True), quantization=_RESCORED
)


def _sparse(vector: SparseVector) -> Any:
    return qe.SparseVector(indices=vector.indices, values=vector.values)


def _vectors(point: Point) -> dict[str, Any]:
    vectors: dict[str, Any] = {DENSE: point.vector}
    if point.sparse is not None:
        vectors[SPARSE] = _sparse(point.sparse)
    return vectors


def _condition(cond: Condition) -> Any:
    if isinstance(cond, Missing):
        return qe.IsEmptyCondition(key=cond.key)
    if isinstance(cond, Match):
        if isinstance(cond.value, tuple):
            values: Any = list(cond.value)
            return qe.FieldCondition(key=cond.key, match=qe.MatchAny(values))
        return qe.FieldCondition(key=cond.key, match=qe.MatchValue(cond.value))
    bounds: dict[str, Any] = {"gte": cond.gte, "gt": cond.gt, "lte": cond.lte, "lt": cond.lt}
    kind = qe.RangeDateTime if cond.is_datetime else qe.RangeFloat
    return qe.FieldCondition(key=cond.key, range=kind(**bounds))


def to_edge_filter(filter: Filter | None) -> Any:
    return qe.Filter(must=[_condition(c) for c in filter]) if filter else None


def _table(what: str) -> list[Translation]:
    """What becomes of the embedded store's failures: its own file operations fail with
    OSError, the engine with bare Exceptions."""
    return [
        (
            OSError,
            lambda exc: StoreError(
                f"cannot use {getattr(exc, 'filename', None) or what}: "
                f"{getattr(exc, 'strerror', None) or first_line(exc)}; check that folder's "
                "permissions and free space"
            ),
        ),
        (Exception, lambda exc: StoreError(f"embedded Qdrant failed on {what}: {first_line(exc)}")),
    ]


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    with translated(_table(str(path))):
        _write_json(path, data)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _edge_config(
    dim: int,
    segment_kib: int,
    indexing_kb: int,
    segments: int | None = None,
    quantized: bool = False,
) -> Any:
    # Vectors and the BM25 index memory-mapped and read on demand, not loaded into RAM when
    # the collection opens: a cold search at 100k chunks would otherwise spend much of its
    # time reading 150 MB of vectors and decoding the inverted index. Quantized copies too:
    # read into RAM at open, a million chunks' took 5 s from disk.
    quantization = (
        qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=0.99, memory=qe.Memory.Cold)
        if quantized
        else None
    )
    return qe.EdgeConfig(
        vectors={
            DENSE: qe.EdgeVectorParams(
                size=dim,
                distance=qe.Distance.Cosine,
                memory=qe.Memory.Cold,
                quantization_config=quantization,
            )
        },
        sparse_vectors={
            SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf, memory=qe.Memory.Cold)
        },
        optimizers=qe.EdgeOptimizersConfig(
            max_segment_size=segment_kib,
            indexing_threshold=indexing_kb,
            # Qdrant's merge optimizer joins the smallest segments while there are more
            # than this (0: as many as the machine has cores), within `max_segment_size`.
            default_segment_number=segments or 0,
        ),
        wal_enabled=False,  # see the module's docstring
    )


class EdgeStore:
    def __init__(self, root: Path, name: str, segment_kib: int | None = None) -> None:
        self.name = check_name(name)
        self.folder = root / name
        self.segment_kib = segment_kib
        self._shard: Any = None
        self._lock: Any = None
        self._unflushed = 0
        self._unsealed = 0
        self._flushed_at = time.monotonic()
        self._written = False
        self._bounded: bool | None = None
        self._segment_points: int | None = None

    # -- lifecycle -----------------------------------------------------------------
    def _translate(self) -> AbstractContextManager[None]:
        return translated(_table(f"collection {self.name!r} in {self.folder.parent}"))

    @property
    def _shard_path(self) -> Path:
        return self.folder / "shard"

    def _open(self) -> Any:
        if self._shard is None:
            self.require()
            self._hold()
            with self._translate():
                self._shard = qe.EdgeShard.load(str(self._shard_path))
        return self._shard

    def _seals_as_it_fills(self) -> bool:
        """Whether the shard bounds its segments. Collections made before it did would,
        optimized at each flush, merge their segments again and again: they are optimized
        once, at the end of a run, as they always were."""
        if self._bounded is None:
            try:
                config = self._engine_config()
                bound_kib = (config.get("optimizers") or {}).get("max_segment_size")
                self._bounded = bool(bound_kib)
                if bound_kib:
                    dim = int(config["vectors"][DENSE]["size"])
                    # The engine seals a segment once it is over the bound.
                    self._segment_points = int(bound_kib) * 1024 // (dim * 4) + 1
            except (OSError, ValueError, KeyError):
                self._bounded = False
        return self._bounded

    def _engine_config(self) -> dict[str, Any]:
        """The shard's configuration as the engine keeps it."""
        return dict(json.loads((self._shard_path / "edge_config.json").read_text()))

    def _hold(self) -> None:
        """Take the collection's lock, or say who has it: the engine runs inside one process."""
        if self._lock is None:
            # Imported here: filelock loads asyncio, 40 ms that a search's start can spare.
            from filelock import FileLock, Timeout

            lock = FileLock(self.folder / LOCK_FILE, timeout=0)
            try:
                lock.acquire()
            except Timeout:
                raise self._locked() from None
            self._lock = lock

    def _locked(self) -> CollectionLocked:
        return CollectionLocked(
            f"collection {self.name!r} is in use by another twinsearch process; wait for it "
            "to finish, or use a Qdrant server (--qdrant-url) for concurrent access"
        )

    def _release(self) -> None:
        if self._lock is not None:
            lock, self._lock = self._lock, None
            lock.release()

    def open(self) -> None:
        self._open()

    def require(self) -> None:
        if not self.exists():
            raise not_found(self.name, f"in {self.folder.parent}")

    def exists(self) -> bool:
        return (self.folder / METADATA_FILE).is_file() and (
            self._shard_path / "edge_config.json"
        ).is_file()

    def create(self, spec: CollectionSpec) -> None:
        if self.exists():
            raise StoreError(f"collection {self.name!r} already exists")
        if self.folder.exists():
            self._clear_half_created()
        with self._translate():
            self.folder.mkdir(parents=True)
        self._hold()
        bound = self.segment_kib or SEGMENT_KIB
        config = _edge_config(spec.dim, bound, bound)
        with self._translate():
            self._shard = qe.EdgeShard.create(str(self._shard_path), config)
            # On-disk (memory-mapped) payload indexes: in-memory ones are rebuilt at every
            # open, which at 100k points more than doubled the time to open a collection.
            indexes: list[tuple[str, Any]] = [
                (f, qe.KeywordIndexParams(on_disk=True)) for f in spec.keyword_fields
            ]
            indexes += [
                (f, qe.IntegerIndexParams(lookup=True, range=True, on_disk=True))
                for f in spec.integer_fields
            ]
            indexes += [(f, qe.DatetimeIndexParams(on_disk=True)) for f in spec.datetime_fields]
            for field, params in indexes:
                self._shard.update(qe.UpdateOperation.create_field_index(field, params))
            self._shard.flush()
        # Written last: a collection without its metadata does not exist.
        _write_json_atomic(self.folder / METADATA_FILE, dict(spec.metadata))

    def _clear_half_created(self) -> None:
        """Remove what a create that died half-way left, unless it holds points."""
        if (self._shard_path / "edge_config.json").is_file():
            self._hold()
            try:
                with self._translate():
                    shard = qe.EdgeShard.load(str(self._shard_path))
                    points = shard.count(qe.CountRequest(exact=True))
                    shard.close()
            finally:
                self._release()
            if points:
                raise StoreError(
                    f"{self.folder} holds {points} points but no {METADATA_FILE}; restore that "
                    "file, or remove the folder to start the collection again"
                )
        with self._translate():
            shutil.rmtree(self.folder)

    def metadata(self) -> dict[str, Any]:
        self.require()
        try:
            return json.loads((self.folder / METADATA_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"cannot read {self.folder / METADATA_FILE}: {exc}; "
                f"drop the collection with `twinsearch drop {self.name}` and index again"
            ) from exc

    def update_metadata(self, changes: Mapping[str, Any]) -> None:
        _write_json_atomic(self.folder / METADATA_FILE, {**self.metadata(), **changes})

    def close(self) -> None:
        if self._shard is not None:
            shard, self._shard = self._shard, None
            try:
                with self._translate():
                    if self._written:  # a search has nothing to write
                        shard.flush()
                    if not _leave_open(self._shard_path.resolve(), shard):
                        shard.close()
            finally:
                self._written = False
                self._release()

    # -- data ------------------------------------------------------------------------
    def upsert(self, points: Sequence[Point]) -> None:
        if not points:
            return
        shard = self._open()
        batch = [qe.Point(p.id, _vectors(p), p.payload) for p in points]
        self._written = True
        with self._translate():
            shard.update(qe.UpdateOperation.upsert_points(batch))
            self._unflushed += len(batch)
            self._unsealed += len(batch)
            full = self._seals_as_it_fills() and self._unsealed >= cast(int, self._segment_points)
            if (
                full
                or self._unflushed >= FLUSH_EVERY
                or time.monotonic() - self._flushed_at >= FLUSH_SECONDS
            ):
                # A commit (see the module's docstring); on collections made before, it also
                # lets the write-ahead log drop what it holds.
                shard.flush()
                self._unflushed = 0
                self._flushed_at = time.monotonic()
            if full:
                # Sealed as soon as it is full, not at the next commit, which could let it
                # grow past its bound by up to FLUSH_EVERY points, and the memory its
                # sealing takes with it. (Counted from this run's writes: a tail under
                # TAIL_KIB that the last run left comes on top.)
                shard.optimize()
                self._unsealed = 0

    def delete(self, filter: Filter) -> None:
        shard = self._open()
        self._written = True
        with self._translate():
            shard.update(qe.UpdateOperation.delete_points_by_filter(to_edge_filter(filter)))

    def delete_points(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        shard = self._open()
        self._written = True
        with self._translate():
            shard.update(qe.UpdateOperation.delete_points(list(ids)))

    def set_payload(self, payload: Mapping[str, Any], filter: Filter) -> None:
        shard = self._open()
        self._written = True
        with self._translate():
            shard.update(
                qe.UpdateOperation.set_payload_by_filter(to_edge_filter(filter), dict(payload))
            )

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
        shard = self._open()
        vectors = [DENSE] if with_vectors else None
        where = to_edge_filter(filter)
        queries: list[tuple[Any, Any]] = []
        if dense is not None:
            params = _EXACT if exact else _FILTERED_PARAMS if filter else _DENSE_PARAMS
            queries.append((qe.Query.Nearest(list(map(float, dense)), using=DENSE), params))
        if sparse is not None:
            queries.append((qe.Query.Nearest(_sparse(sparse), using=SPARSE), None))
        if len(queries) == 1:
            [(query, params)] = queries
            request = qe.QueryRequest(
                limit=k,
                query=query,
                filter=where,
                with_payload=True,
                with_vector=vectors,
                params=params,
            )
        else:
            request = qe.QueryRequest(
                limit=k,
                prefetches=[
                    qe.Prefetch(limit=k, query=q, filter=where, params=p) for q, p in queries
                ],
                query=cast(Any, qe.Fusion.Rrf(k=RRF_K)),  # the stubs omit it from the union
                with_payload=True,
                with_vector=vectors,
            )
        with self._translate():
            found = shard.query(request)
        return [to_scored(p.id, p.score, p.payload, p.vector, with_vectors) for p in found]

    def count(self, filter: Filter | None = None) -> int:
        shard = self._open()
        with self._translate():
            return int(shard.count(qe.CountRequest(exact=True, filter=to_edge_filter(filter))))

    def page(
        self, offset: Any, fields: Sequence[str] | None, filter: Filter | None, vectors: bool
    ) -> tuple[list[tuple[str, dict[str, Any], Point | None]], Any]:
        """One page of points from ``offset`` (None: the first): each point's id, payload
        (the named ``fields``, or all) and, with ``vectors``, the point itself; and the
        offset of the next page, None after the last."""
        shard = self._open()
        request = qe.ScrollRequest(
            offset=offset,
            limit=SCROLL_PAGE,
            filter=to_edge_filter(filter),
            with_payload=True if fields is None else list(fields),
            with_vector=vectors,
        )
        with self._translate():
            records, offset = shard.scroll(request)
        page = [
            (
                str(r.id),
                dict(r.payload or {}),
                to_point(r.id, r.vector, r.payload) if vectors else None,
            )
            for r in records
        ]
        return page, offset

    def scroll(
        self, fields: Sequence[str], filter: Filter | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        offset = None
        while True:
            page, offset = self.page(offset, fields, filter, vectors=False)
            for pid, payload, _ in page:
                yield pid, payload
            if offset is None:
                return

    def points(self) -> Iterator[list[Point]]:
        offset = None
        while True:
            page, offset = self.page(offset, None, None, vectors=True)
            yield [point for _, _, point in page if point is not None]
            if offset is None:
                return

    def finish(self) -> None:
        shard = self._open()
        with self._translate():
            shard.flush()
            shard.optimize()
            if self._written and self._seals_as_it_fills():
                self._seal_tail()

    def segments(self) -> int:
        shard = self._open()
        with self._translate():
            return int(shard.info().segments_count)

    def optimize(self, merged_mb: int | None = None, quantize: bool = False) -> tuple[int, int]:
        """Merge sealed segments into as few as fit ``merged_mb`` MB of dense vectors each
        (``MERGED_KIB``); every point, payload and vector is kept. With ``quantize``, the
        collection keeps int8 copies of its vectors from then on, built in the same pass.
        Returns the number of segments before and after.

        Qdrant's own optimizers do it: each new segment is built beside the ones it
        replaces, which go only once it is complete, so a merge killed half-way leaves the
        collection as it was. The bound is raised for this pass only, then put back: the
        next run's writes still seal segments of the collection's own size.
        """
        config = self._engine_config()
        bound = int(config["optimizers"]["max_segment_size"] or SEGMENT_KIB)
        dim = int(config["vectors"][DENSE]["size"])
        quantized = quantize or self.quantized()
        target = max(merged_mb * 1000 if merged_mb else MERGED_KIB, bound)
        before = self.segments()
        with self._translate():
            self._shard.flush()
            self._reload(_edge_config(dim, target, bound, segments=1, quantized=quantized))
            self._shard.optimize()
            self._reload(_edge_config(dim, bound, bound, quantized=quantized))
        return before, self.segments()

    def quantized(self) -> bool:
        """Whether the collection keeps int8 copies of its vectors to search on."""
        vectors = self._engine_config()["vectors"][DENSE]
        return bool(vectors.get("quantization_config"))

    def index_field(self, key: str, kind: str) -> None:
        params: Any = {
            "keyword": lambda: qe.KeywordIndexParams(on_disk=True),
            "integer": lambda: qe.IntegerIndexParams(lookup=True, range=True, on_disk=True),
            "float": lambda: qe.FloatIndexParams(on_disk=True),
            "bool": lambda: qe.BoolIndexParams(on_disk=True),
            "datetime": lambda: qe.DatetimeIndexParams(on_disk=True),
        }[kind]()
        shard = self._open()
        self._written = True
        with self._translate():
            shard.update(qe.UpdateOperation.create_field_index(key, params))

    def _reload(self, config: Any) -> None:
        self._shard.flush()
        if not _leave_open(self._shard_path.resolve(), self._shard):
            self._shard.close()
        self._shard = qe.EdgeShard.load(str(self._shard_path), config)

    def _seal_tail(self) -> None:
        """Seal the partly filled last segment too, if it holds more than ``TAIL_KIB``.

        Left as it is, it would cost every search that opens the collection: an unsealed
        segment rebuilds its BM25 index in memory when opened and is scanned whole by each
        query (at 80k chunks, a 32k-chunk tail made opening 0.27 s instead of 0.07 s; at
        100k, a 4k-chunk one 0.15 s instead of 0.10 s).
        The optimizer seals what is above its indexing threshold, so the threshold is
        lowered for one pass, then put back for the next run's writes.
        """
        config = self._engine_config()
        bound = int(config["optimizers"]["max_segment_size"])
        dim = int(config["vectors"][DENSE]["size"])
        quantized = self.quantized()
        for threshold in (min(TAIL_KIB, bound), bound):
            self._reload(_edge_config(dim, bound, threshold, quantized=quantized))
            if threshold < bound:
                self._shard.optimize()


class EdgeClient:
    """Collections in a folder, each one a Qdrant Edge shard."""

    aliased = False  # an alias may shadow a folder of the same name

    def __init__(self, data_dir: Path, segment_mb: int | None = None) -> None:
        self.root = Path(data_dir).expanduser() / "collections"
        self.segment_kib = segment_mb * 1000 if segment_mb else None
        self.location = str(self.root)
        self._open: dict[str, EdgeStore] = {}

    def collections(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if COLLECTION_NAME.match(p.name) and EdgeStore(self.root, p.name).exists()
        )

    def collection(self, name: str, resolve: bool = True) -> EdgeStore:
        if resolve:
            name = self.aliases().get(name, name)
        if name not in self._open:
            self._open[name] = EdgeStore(self.root, name, self.segment_kib)
        return self._open[name]

    def drop(self, name: str) -> None:
        aliases = self.aliases()
        target = aliases.get(name)
        if target and target != name and EdgeStore(self.root, name).exists():
            raise StoreError(
                f"{name!r} stands for {target!r} since a re-index, and the collection "
                f"{name!r} it replaced is still kept; `twinsearch alias {name} {name}` "
                "switches back to that one, after which each can be dropped by its own name"
            )
        store = self.collection(name)
        store.open()  # refuses if it is missing, or while another process holds it
        store.close()
        kept = {a: t for a, t in aliases.items() if t != store.name and a != name}
        if kept != aliases:
            _write_json_atomic(self.root / ALIASES_FILE, kept)
        with translated(_table(str(store.folder))):
            shutil.rmtree(store.folder)
        del self._open[store.name]

    def aliases(self) -> dict[str, str]:
        try:
            return dict(json.loads((self.root / ALIASES_FILE).read_text()))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StoreError(f"unreadable {self.root / ALIASES_FILE}: {exc}") from None

    def switch_alias(self, alias: str, target: str) -> str | None:
        check_name(alias)
        EdgeStore(self.root, check_name(target)).require()
        aliases = self.aliases()
        previous = aliases.get(alias, alias if EdgeStore(self.root, alias).exists() else None)
        if target == alias:
            aliases.pop(alias, None)  # the collection of that name itself
        else:
            aliases[alias] = target
        with translated(_table(str(self.root))):
            self.root.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(self.root / ALIASES_FILE, aliases)
        return previous

    def close(self) -> None:
        for store in self._open.values():
            store.close()
