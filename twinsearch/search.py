"""Query to ranked documents: embed, nearest chunks from the store, grouped by document."""

from __future__ import annotations

from twinsearch.encoders import Encoder
from twinsearch.stores import Filter, Store
from twinsearch.types import Hit, ScoredPoint


def _best_per_document(points: list[ScoredPoint]) -> dict[str, ScoredPoint]:
    best: dict[str, ScoredPoint] = {}
    for point in points:
        doc_id = str(point.payload.get("doc_id", point.id))
        if doc_id not in best or point.score > best[doc_id].score:
            best[doc_id] = point
    return best


def search_vector(
    store: Store, vector: list[float], k: int = 10, filter: Filter | None = None
) -> list[Hit]:
    """The ``k`` documents whose best chunk is nearest to ``vector``.

    A document scores as its best chunk. If the top ``n`` chunks cover at least ``k``
    documents, no document outside them can beat those ``k``, so the answer is exact for
    the store's nearest-neighbour search; otherwise ``n`` doubles.
    """
    if k < 1:
        return []
    n = max(3 * k, 20)
    while True:
        points = store.search(vector, n, filter)
        best = _best_per_document(points)
        if len(best) >= k or len(points) < n:
            break
        n *= 2
    ranked = sorted(best.items(), key=lambda item: (-item[1].score, item[0]))[:k]
    return [
        Hit(
            rank=rank,
            doc_id=doc_id,
            score=point.score,
            title=str(point.payload.get("title", "")),
            snippet=str(point.payload.get("text", "")),
            source=str(point.payload.get("source", "")),
            chunk=int(point.payload.get("chunk", 0)),
        )
        for rank, (doc_id, point) in enumerate(ranked, start=1)
    ]


def search(
    store: Store, encoder: Encoder, query: str, k: int = 10, filter: Filter | None = None
) -> list[Hit]:
    vector = encoder.encode_queries([query])[0]
    return search_vector(store, vector.tolist(), k, filter)
