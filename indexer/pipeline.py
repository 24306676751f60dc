"""Documents to chunks to vectors to the store, in batches.

A document's chunks are written before the points of its older, longer version are
deleted, so a document is never missing from the index while it is re-indexed.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any

from twinsearch.collections import open_for_write
from twinsearch.encoders import Encoder
from twinsearch.indexer.chunking import ChunkSettings, chunk_document
from twinsearch.indexer.sources import Corpus
from twinsearch.sparse import Bm25, Bm25Settings, mean_analyzed_length
from twinsearch.stores import Client, Match, Range, Store
from twinsearch.types import Chunk, Document, Point

_POINT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "twinsearch/chunk")


def point_id(doc_id: str, chunk: int) -> str:
    """Deterministic, so indexing the same document again overwrites instead of duplicating."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{doc_id}\x00{chunk}"))


@dataclass
class IndexReport:
    documents: int = 0
    chunks: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def skip(self, where: str, why: str) -> None:
        self.skipped.append((where, why))


def _payload(doc: Document, chunk: Chunk) -> dict[str, object]:
    payload: dict[str, object] = {
        "doc_id": doc.doc_id,
        "chunk": chunk.index,
        "title": doc.title,
        "text": chunk.text,
        "source": doc.source,
        "start": chunk.start,
        "end": chunk.end,
    }
    if doc.fields:
        payload["fields"] = doc.fields
    return payload


class Indexer:
    def __init__(
        self,
        encoder: Encoder,
        store: Store,
        chunking: ChunkSettings,
        *,
        bm25: Bm25 | None = None,
        report: IndexReport | None = None,
        batch_size: int = 256,
        on_progress: Callable[[IndexReport], None] = lambda report: None,
    ) -> None:
        self.encoder = encoder
        self.store = store
        self.chunking = chunking
        self.bm25 = bm25
        self.batch_size = batch_size
        self.on_progress = on_progress
        self.report = report or IndexReport()
        self._pending: list[tuple[Document, Chunk]] = []
        self._completed: list[tuple[str, int]] = []
        self._seen: dict[str, str] = {}

    def run(self, documents: Iterable[Document]) -> IndexReport:
        started = time.perf_counter()
        for doc in documents:
            self.add(doc)
            self.on_progress(self.report)
        self.flush()
        self.store.finish()
        self.report.seconds = time.perf_counter() - started
        self.on_progress(self.report)
        return self.report

    def add(self, doc: Document) -> None:
        if doc.doc_id in self._seen:
            self.report.skip(
                doc.source, f"duplicate id {doc.doc_id!r} (first seen in {self._seen[doc.doc_id]})"
            )
            return
        self._seen[doc.doc_id] = doc.source
        chunks = list(chunk_document(doc, self.encoder.tokenizer, self.chunking))
        if not chunks:
            self.report.skip(doc.source, f"no text to index in {doc.doc_id!r}")
            return
        self._pending.extend((doc, chunk) for chunk in chunks)
        self._completed.append((doc.doc_id, len(chunks)))
        if len(self._pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        for start in range(0, len(self._pending), self.batch_size):
            batch = self._pending[start : start + self.batch_size]
            inputs = [c.input for _, c in batch]
            vectors = self.encoder.encode_documents(inputs)
            terms = self.bm25.encode_documents(inputs) if self.bm25 else [None] * len(batch)
            self.store.upsert(
                [
                    Point(point_id(d.doc_id, c.index), v, _payload(d, c), t)
                    for (d, c), v, t in zip(batch, vectors, terms, strict=True)
                ]
            )
            self.report.chunks += len(batch)
        for doc_id, n_chunks in self._completed:
            # Chunks beyond the new count belong to an older, longer version.
            self.store.delete([Match("doc_id", doc_id), Range("chunk", gte=n_chunks)])
        self.report.documents += len(self._completed)
        self._pending.clear()
        self._completed.clear()


BM25_SAMPLE_DOCS = 1000


def open_collection(
    client: Client,
    name: str,
    encoder: Encoder,
    chunking: ChunkSettings,
    documents: Iterable[Document],
    **extra: Any,
) -> tuple[Store, Bm25 | None, Iterator[Document]]:
    """The collection to index ``documents`` into, created if needed, and the documents.

    A new collection fixes BM25's average length from the chunks of the first documents,
    which are read ahead and handed back with the rest.
    """
    docs = iter(documents)
    bm25 = None
    if not client.collection(name).exists():
        head = list(islice(docs, BM25_SAMPLE_DOCS))
        inputs = [c.input for d in head for c in chunk_document(d, encoder.tokenizer, chunking)]
        bm25 = Bm25Settings(avg_len=round(mean_analyzed_length(inputs), 1))
        docs = chain(head, docs)
    store, model = open_for_write(client, name, encoder, chunking.as_dict(), bm25, **extra)
    return store, model, docs


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def index_once(
    client: Client,
    name: str,
    encoder: Encoder,
    chunking: ChunkSettings,
    corpus_path: Path,
    *,
    batch_size: int = 128,
    on_progress: Callable[[Corpus, IndexReport], None] = lambda corpus, report: None,
) -> tuple[Store, IndexReport | None]:
    """A collection holding exactly this corpus file, built unless a complete one exists.

    Reused only if it was finished and records the same corpus hash, encoder and chunking;
    otherwise it is dropped and built again, so a killed build is never mistaken for one.
    """
    digest = file_sha256(corpus_path)
    store = client.collection(name)
    if store.exists():
        meta = store.metadata()
        if (
            meta.get("complete")
            and meta.get("corpus_sha256") == digest
            and meta.get("encoder", {}).get("fingerprint") == encoder.fingerprint
            and meta.get("chunking") == chunking.as_dict()
        ):
            return store, None
        client.drop(name)
    report = IndexReport()
    corpus = Corpus([corpus_path], on_skip=report.skip)
    store, bm25, docs = open_collection(
        client, name, encoder, chunking, corpus, corpus_sha256=digest, complete=False
    )
    indexer = Indexer(
        encoder,
        store,
        chunking,
        bm25=bm25,
        report=report,
        batch_size=batch_size,
        on_progress=lambda report: on_progress(corpus, report),
    )
    indexer.run(docs)
    store.update_metadata({"complete": True})
    return store, report
