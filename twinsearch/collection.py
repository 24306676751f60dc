"""A collection remembers the encoder and chunking that made it, and refuses any other."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from twinsearch._version import __version__
from twinsearch.encoders import Encoder
from twinsearch.errors import EncoderMismatch
from twinsearch.nouns import Point
from twinsearch.sparse import DRIFT_TOLERANCE, Bm25, Bm25Settings, Bm25Stats
from twinsearch.stores import Client, CollectionSpec, Match, Store
from twinsearch.stores.base import VERSION_SEP, versioned_name

_POINT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "twinsearch/chunk")
ID_SCHEME = 2
"""How point ids are made, recorded in the metadata as ``ids``. 2: from the root a document
was indexed from, its id and the chunk number; collections without the key made them from
the id and the chunk alone, so that same-named files of two folders took each other's
place."""


def point_id(root: str, doc_id: str, chunk: int) -> str:
    """Deterministic, so indexing the same document again overwrites instead of duplicating;
    distinct for documents of the same id under different roots (two folders' README.md)."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{root}\x00{doc_id}\x00{chunk}"))


def upgrade_ids(store: Store, on_page: Callable[[int], None] = lambda done: None) -> int:
    """Give every point of a collection made before ``ID_SCHEME`` 2 its new id: vectors and
    payloads are copied, nothing is embedded again. Safe to interrupt and run again: each
    page is written under its new ids before its old ids are deleted, and a point that
    already has its new id is left alone. Returns the number of points moved."""
    moved = 0
    pages = store.points()
    for page in pages:
        renamed = []
        for point in page:
            payload = point.payload
            new = point_id(
                str(payload.get("root", "")),
                str(payload.get("doc_id")),
                int(payload.get("chunk", 0)),
            )
            if new != point.id:
                renamed.append((point.id, Point(new, point.vector, payload, point.sparse)))
        if renamed:
            store.upsert([p for _, p in renamed])
            store.delete_points([old for old, _ in renamed])
            moved += len(renamed)
            on_page(moved)
    store.update_metadata({"ids": ID_SCHEME})
    return moved


BM25_STATS = "bm25_stats"
"""Metadata key: the collection's ``Bm25Stats``, kept as chunks are written and deleted."""
BM25_LENGTH = "bm25_len"
"""Payload field: the chunk's analyzed length, in terms."""
BM25_BAKED = "bm25_avg"
"""Payload field: the ``avg_len`` the chunk's weights were computed with."""


def bm25_payload(length: int, bm25: Bm25) -> dict[str, float]:
    return {BM25_LENGTH: length, BM25_BAKED: bm25.settings.avg_len}


def measure_bm25(store: Store, bm25: Bm25) -> Bm25Stats:
    """The collection's chunks and terms counted from its points, a page at a time."""
    stats = Bm25Stats()
    for page in store.points():
        for point in page:
            if point.sparse is not None:
                stats = stats.plus(1, _length(point, bm25))
    return stats


def _length(point: Point, bm25: Bm25) -> int:
    """A chunk's analyzed length: recorded, or (points written before it was) recovered
    from its weights."""
    if BM25_LENGTH in point.payload:
        return int(point.payload[BM25_LENGTH])
    assert point.sparse is not None
    return bm25.length_of(point.sparse)


def rebake_bm25(
    store: Store,
    bm25: Bm25,
    stats: Bm25Stats,
    on_page: Callable[[int], None] = lambda done: None,
) -> Bm25:
    """Rewrite every chunk's BM25 weights for the collection's true mean length, from its
    stored weights and length: no text is analyzed again and no dense vector is touched.
    A page at a time, so memory stays bounded; safe to interrupt, since each point records
    the ``avg_len`` its weights were computed with. Returns the model now in force."""
    new = bm25.with_avg_len(round(stats.mean or bm25.settings.avg_len, 1))
    baked: dict[float, Bm25] = {}
    done = 0
    for page in store.points():
        rewritten = []
        for point in page:
            if point.sparse is None:
                continue
            was = float(point.payload.get(BM25_BAKED, bm25.settings.avg_len))
            if was == new.settings.avg_len and BM25_LENGTH in point.payload:
                continue
            length = _length(point, baked.setdefault(was, bm25.with_avg_len(was)))
            sparse = new.reweighed(point.sparse, length, baked[was])
            payload = {**point.payload, **bm25_payload(length, new)}
            rewritten.append(Point(point.id, point.vector, payload, sparse))
        store.upsert(rewritten)
        done += len(page)
        on_page(done)
    store.update_metadata({"bm25": new.settings.as_dict(), BM25_STATS: stats.as_dict()})
    return new


def keep_bm25_current(
    store: Store, bm25: Bm25, stats: Bm25Stats, on_page: Callable[[int], None] = lambda d: None
) -> Bm25:
    """Record ``stats``; where the baked ``avg_len`` has drifted from their mean by more
    than ``DRIFT_TOLERANCE``, rewrite the weights (``rebake_bm25``). The model in force."""
    if stats.drift(bm25.settings.avg_len) > DRIFT_TOLERANCE:
        return rebake_bm25(store, bm25, stats, on_page)
    store.update_metadata({BM25_STATS: stats.as_dict()})
    return bm25


def describe_encoder(encoder: Encoder) -> dict[str, Any]:
    return {
        "name": encoder.name,
        "fingerprint": encoder.fingerprint,
        "dim": encoder.dim,
        "similarity": encoder.similarity,
        "window": encoder.window,
    }


def build_metadata(
    encoder: Encoder, chunking: Mapping[str, Any], bm25: Bm25Settings, **extra: Any
) -> dict[str, Any]:
    return {
        "twinsearch_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "encoder": describe_encoder(encoder),
        "chunking": dict(chunking),
        "bm25": bm25.as_dict(),
        BM25_STATS: Bm25Stats().as_dict(),
        "ids": ID_SCHEME,
        **extra,
    }


def recorded_model(store: Store) -> str:
    """The model a collection was built with, as the user named it."""
    return str(store.metadata()["encoder"]["name"])


def check_encoder(store: Store, encoder: Encoder) -> dict[str, Any]:
    meta = store.metadata()
    have = meta.get("encoder", {})
    if have.get("fingerprint") != encoder.fingerprint:
        raise EncoderMismatch(
            f"collection {store.name!r} was indexed with model {have.get('name')!r} "
            f"(fingerprint {str(have.get('fingerprint'))[:12]}), not with {encoder.name!r} "
            f"(fingerprint {encoder.fingerprint[:12]}); search it with --model "
            f"{have.get('name')}; to rebuild it with the new model, index with --reindex"
        )
    return meta


def check_chunking(store: Store, meta: Mapping[str, Any], chunking: Mapping[str, Any]) -> None:
    have = dict(meta.get("chunking", {}))
    if have != dict(chunking):
        raise EncoderMismatch(
            f"collection {store.name!r} was chunked with {have}, not {dict(chunking)}; "
            "index with the same chunk settings, or into another collection with --collection NAME"
        )


def open_for_search(client: Client, name: str, encoder: Encoder) -> Store:
    store = client.collection(name)
    check_encoder(store, encoder)
    return store


def create(client: Client, name: str, fingerprint: str, spec: CollectionSpec) -> Store:
    """Create collection ``name``; where the client wants it (a server), as
    ``versioned_name`` behind an alias ``name``, so that a re-index can switch it later."""
    behind_alias = client.aliased and VERSION_SEP not in name
    store = client.collection(versioned_name(name, fingerprint) if behind_alias else name)
    store.create(spec)
    if behind_alias:
        client.switch_alias(name, store.name)
    return store


def open_for_write(
    client: Client,
    name: str,
    encoder: Encoder,
    chunking: Mapping[str, Any],
    bm25: Bm25Settings | None = None,
    *,
    on_upgrade: Callable[[int], None] = lambda moved: None,
    **extra: Any,
) -> tuple[Store, Bm25 | None]:
    """The collection to index into, created if needed, and the BM25 model its points need.

    A new collection gets ``bm25`` (or the defaults) and ``extra`` in its metadata; an
    existing one must match ``encoder`` and ``chunking`` and keeps its own BM25 settings.
    One made before ``ID_SCHEME`` 2 is upgraded first (``upgrade_ids``; ``on_upgrade`` is
    called with 0 before it starts and with the points moved after each page); one whose
    BM25 statistics were never kept has them counted, and its weights rewritten with each
    chunk's length recorded (``rebake_bm25``).
    """
    store = client.collection(name)
    if not store.exists():
        bm25 = bm25 or Bm25Settings()
        metadata = build_metadata(encoder, chunking, bm25, **extra)
        spec = CollectionSpec(dim=encoder.dim, metadata=metadata)
        return create(client, name, encoder.fingerprint, spec), Bm25(bm25)
    meta = check_encoder(store, encoder)
    check_chunking(store, meta, chunking)
    if meta.get("ids") != ID_SCHEME:
        on_upgrade(0)
        upgrade_ids(store, on_upgrade)
    bm25_model = Bm25.recorded(meta)
    if bm25_model is not None and meta.get(BM25_STATS) is None:
        bm25_model = rebake_bm25(store, bm25_model, measure_bm25(store, bm25_model))
    return store, bm25_model


def describe(store: Store) -> dict[str, Any]:
    meta = store.metadata()
    encoder = meta.get("encoder", {})
    return {
        "name": store.name,
        "documents": store.count([Match("chunk", 0)]),
        "chunks": store.count(),
        "segments": store.segments(),
        "quantized": store.quantized(),
        "model": encoder.get("name"),
        "fingerprint": encoder.get("fingerprint"),
        "dim": encoder.get("dim"),
        "chunking": meta.get("chunking"),
        "runtime": meta.get("runtime"),
        "created": meta.get("created"),
        "twinsearch_version": meta.get("twinsearch_version"),
    }


def describe_all(client: Client, close: bool = True) -> dict[str, Any]:
    """Where the data lives, its collections and the aliases that name them; ``close``
    releases each collection once described."""
    collections = []
    aliases = client.aliases()
    for name in client.collections():
        store = client.collection(name, resolve=False)
        try:
            described = describe(store)
        finally:
            if close:
                store.close()
        described["aliases"] = sorted(a for a, t in aliases.items() if t == name)
        collections.append(described)
    return {"location": client.location, "collections": collections, "aliases": aliases}
