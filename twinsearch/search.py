"""Query to ranked documents: nearest chunks from the store, grouped by document.

Three modes share one path: ``dense`` (the encoder's vectors, cosine), ``bm25`` (the
collection's BM25 term vectors) and ``hybrid`` (both, fused by reciprocal rank in Qdrant).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from twinsearch.encoders import Encoder
from twinsearch.errors import ConfigError, EmptyQuery
from twinsearch.nouns import MAX_K, MODES, Hit, Mode, ScoredPoint, SearchMode, SparseVector
from twinsearch.passages import passage_of
from twinsearch.sparse import Bm25
from twinsearch.stores import Filter, Match, Store

__all__ = ["MAX_K", "MODES", "Mode", "SearchMode", "Searcher", "at_least", "retrieve", "search"]


def _best_per_document(points: list[ScoredPoint]) -> dict[tuple[str, str], ScoredPoint]:
    """The best chunk of each document, a document being its (root, id): two folders'
    README.md are two documents."""
    best: dict[tuple[str, str], ScoredPoint] = {}
    for point in points:
        key = (str(point.payload.get("root", "")), str(point.payload.get("doc_id", point.id)))
        # Equal scores (frequent under rank fusion) go to the earlier chunk: the engine's
        # order among ties is not stable from one query to the next.
        if key not in best or _rank_key(point) < _rank_key(best[key]):
            best[key] = point
    return best


def _rank_key(point: ScoredPoint) -> tuple[float, int]:
    return (-point.score, int(point.payload.get("chunk", 0)))


def retrieve(
    store: Store,
    k: int,
    *,
    dense: Sequence[float] | None = None,
    sparse: SparseVector | None = None,
    filter: Filter | None = None,
    with_vectors: bool = False,
) -> list[ScoredPoint]:
    """The best chunk of each of the ``k`` documents whose best chunk ranks highest.

    A document scores as its best chunk. If the top ``n`` chunks cover at least ``k``
    documents, no document outside them can beat those ``k``, so the answer is exact for
    the store's ranking of chunks; otherwise ``n`` doubles. Ties go to the smaller id.
    """
    if k < 1:
        return []
    n = max(3 * k, 20)
    while True:
        points = store.search(
            n, dense=dense, sparse=sparse, filter=filter, with_vectors=with_vectors
        )
        best = _best_per_document(points)
        if len(best) >= k or len(points) < n:
            break
        n *= 2
    ranked = sorted(best.items(), key=lambda item: (-item[1].score, item[0][1], item[0][0]))
    return [point for _, point in ranked[:k]]


_WORDS = re.compile(r"\w+")
WORDS_KEPT = 100_000
"""Words whose analysed terms a searcher keeps, for passages and highlights."""
NEIGHBOUR_FIELDS = ("text", "start", "end", "line", "column")


def _hit(rank: int, point: ScoredPoint, mode: str) -> Hit:
    payload = point.payload
    return Hit(
        rank=rank,
        doc_id=str(payload.get("doc_id", point.id)),
        root=str(payload.get("root", "")),
        score=point.score,
        title=str(payload.get("title", "")),
        snippet=str(payload.get("text", "")),
        source=str(payload.get("source", "")),
        chunk=int(payload.get("chunk", 0)),
        mode=mode,
        line=_whole(payload.get("line")),
        column=_whole(payload.get("column")),
        end_line=_whole(payload.get("end_line")),
    )


def _whole(value: Any) -> int | None:
    return None if value is None else int(value)


def _cosine(a: Any, b: Any) -> float:
    import numpy as np

    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) or 1.0))


class Searcher:
    """A collection opened for queries, with the encoder and BM25 settings it was built with."""

    def __init__(self, store: Store, encoder: Encoder, bm25: Bm25 | None = None) -> None:
        self.store = store
        self.encoder = encoder
        self.bm25 = bm25
        self._fallback_analyzer: Bm25 | None = None
        self._word_terms: dict[str, frozenset[int]] = {}

    @classmethod
    def for_store(cls, store: Store, encoder: Encoder) -> Searcher:
        return cls(store, encoder, Bm25.recorded(store.metadata()))

    def _check(self, queries: Sequence[str], k: int, mode: str) -> None:
        if any(not query.strip() for query in queries):
            raise EmptyQuery("the query is empty; pass some words to search for")
        if not 1 <= k <= MAX_K:
            raise ConfigError(f"k must be a whole number from 1 to {MAX_K}, not {k}")
        if mode not in MODES:
            raise ConfigError(f"unknown search mode {mode!r}; choose one of {', '.join(MODES)}")
        if mode != "dense" and self.bm25 is None:
            raise ConfigError(
                f"collection {self.store.name!r} has no BM25 vectors; search it with "
                "--mode dense, or index it again into a new collection"
            )

    @property
    def default_mode(self) -> str:
        """hybrid where the collection has BM25 vectors (it led dense by 0.03-0.05 nDCG@10 on
        every retrieval set measured), else dense."""
        return SearchMode.hybrid.value if self.bm25 is not None else SearchMode.dense.value

    def search(
        self, query: str, k: int = 10, mode: Mode | None = None, filter: Filter | None = None
    ) -> list[Hit]:
        return self.search_many([query], k, mode, filter)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        mode: Mode | None = None,
        filter: Filter | None = None,
        readable: bool = True,
    ) -> list[list[Hit]]:
        """Queries embedded as one batch, then each run through ``retrieve``. ``readable``
        adds each hit's ``similarity`` and ``terms`` (what evaluation, which reads only the
        ranking, can spare)."""
        if mode is None:
            mode = self.default_mode
        mode = SearchMode(mode).value if mode in MODES else mode
        self._check(queries, k, mode)
        # bm25 ranks without the model, but its passages are still chosen with it.
        dense = self.encoder.encode_queries(queries) if mode != "bm25" or readable else None
        results = []
        for i, query in enumerate(queries):
            sparse = self.bm25.encode_query(query) if self.bm25 and mode != "dense" else None
            vector = dense[i].tolist() if dense is not None else None
            if mode == "bm25":
                vector, passage_vector = None, vector
            else:
                passage_vector = vector
            points = retrieve(
                self.store,
                k,
                dense=vector,
                sparse=sparse,
                filter=filter,
                with_vectors=readable and mode == "hybrid",
            )
            hits = [_hit(rank, p, mode) for rank, p in enumerate(points, start=1)]
            if readable:
                shown = set((sparse or self._analyzer().encode_query(query)).indices)
                hits = [
                    self._readable(h, p, vector, sparse, passage_vector, shown)
                    for h, p in zip(hits, points, strict=True)
                ]
            results.append(hits)
        return results

    def shared_ids(self, hits: Sequence[Hit]) -> list[bool]:
        """For each hit, whether documents indexed from other roots have its id too (two
        folders' README.md), so that showing the id alone would be ambiguous."""
        shared = []
        for hit in hits:
            with_id = [Match("doc_id", hit.doc_id), Match("chunk", 0)]
            shared.append(self.store.count(with_id) > 1)
        return shared

    def _readable(
        self,
        hit: Hit,
        point: ScoredPoint,
        query: Any,
        terms: SparseVector | None,
        passage_query: Any,
        query_terms: set[int],
    ) -> Hit:
        """``hit`` with what a person can read whatever the mode: how close its best chunk
        is in meaning (cosine), how many of the query's terms it holds, and its passage
        (chosen with ``passage_query``, the query's vector in every mode, and, where they
        rank, ``query_terms``; which are highlighted in every mode)."""
        similarity = None
        if query is not None:
            similarity = point.score if hit.mode == "dense" else _cosine(query, point.vector)
        matched = None
        if terms is not None and self.bm25 is not None:
            [chunk] = self.bm25.encode_documents([f"{hit.title}\n{hit.snippet}"])
            matched = (len(set(terms.indices) & set(chunk.indices)), len(set(terms.indices)))
        passage = passage_of(
            point.payload,
            query=passage_query,
            dim=self.encoder.dim,
            query_terms=query_terms,
            terms=self._terms,
            by_terms=hit.mode != "dense",
            neighbour=lambda chunk: self._neighbour(hit, chunk),
        )
        return replace(
            hit,
            similarity=similarity,
            terms=matched,
            passage=passage.text,
            highlights=passage.highlights,
            line=passage.line,
            column=passage.column,
            end_line=passage.end_line,
        )

    def _analyzer(self) -> Bm25:
        """The collection's BM25 analyzer; the default one for a collection without."""
        if self.bm25 is not None:
            return self.bm25
        if self._fallback_analyzer is None:
            self._fallback_analyzer = Bm25()
        return self._fallback_analyzer

    def _terms(self, text: str) -> set[int]:
        """The analysed terms of ``text``'s words, each word analysed once per searcher."""
        terms: set[int] = set()
        for word in _WORDS.findall(text.lower()):
            known = self._word_terms.get(word)
            if known is None:
                if len(self._word_terms) >= WORDS_KEPT:
                    self._word_terms.clear()
                [vector] = self._analyzer().encode_documents([word])
                known = self._word_terms[word] = frozenset(vector.indices)
            terms |= known
        return terms

    def _neighbour(self, hit: Hit, chunk: int) -> dict[str, Any] | None:
        where = [Match("root", hit.root), Match("doc_id", hit.doc_id), Match("chunk", chunk)]
        for _, payload in self.store.scroll(NEIGHBOUR_FIELDS, where):
            return payload
        return None


def at_least(hits: Sequence[Hit], minimum: float) -> list[Hit]:
    """The hits whose readable score is ``minimum`` or more: the cosine similarity of the best
    passage in dense and hybrid modes (a fusion score only orders), the BM25 score in bm25."""
    return [hit for hit in hits if _readable_score(hit) >= minimum]


def _readable_score(hit: Hit) -> float:
    if hit.mode == "bm25" or hit.similarity is None:
        return hit.score
    return hit.similarity


def search(
    store: Store,
    encoder: Encoder,
    query: str,
    k: int = 10,
    filter: Filter | None = None,
    mode: Mode = "dense",
) -> list[Hit]:
    return Searcher.for_store(store, encoder).search(query, k, mode, filter)
