"""Documents to chunks to vectors to the store, in batches.

A document's chunks are written before the points of its older, longer version are
deleted, so a document is never missing from the index while it is re-indexed.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from queue import Queue
from threading import Thread
from typing import TYPE_CHECKING, Any, Protocol

from twinsearch.collection import (
    BM25_LENGTH,
    BM25_STATS,
    bm25_payload,
    keep_bm25_current,
    open_for_write,
    point_id,
)
from twinsearch.documents import Lines, Place
from twinsearch.encoders import Encoder
from twinsearch.encoders.base import Spans, encode_with_sentences
from twinsearch.errors import SourceError
from twinsearch.indexer.changes import Change, DocKey, Planner, key_of, load_manifest
from twinsearch.indexer.chunking import ChunkSettings, chunk_document
from twinsearch.indexer.formats import suffix_of
from twinsearch.indexer.sources import Corpus
from twinsearch.nouns import Chunk, Document, Point
from twinsearch.passages import pack, sentence_spans, stored_form
from twinsearch.sparse import Bm25, Bm25Settings, Bm25Stats, mean_analyzed_length
from twinsearch.stores import Client, Filter, Match, Range, Store

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "Encoding",
    "IndexReport",
    "Indexer",
    "LocalEncoding",
    "index_corpus",
    "index_once",
    "plan",
    "point_id",
]


def _document_filter(key: DocKey) -> list[Match | Range]:
    root, doc_id = key
    return [Match("root", root), Match("doc_id", doc_id)]


@dataclass
class IndexReport:
    documents: int = 0
    """Documents embedded and written: the new and the changed."""
    chunks: int = 0
    changes: dict[str, int] = field(default_factory=lambda: {c.value: 0 for c in Change})
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    refreshed: int = 0
    """Unchanged documents whose file metadata (modification time) was brought up to date."""
    chunks_planned: int = 0
    """Chunks of the new and changed documents read so far: the encoder's work known."""
    encoding_seconds: float = 0.0
    """Spent in the encoder (or, with encoders elsewhere, waiting for their vectors)."""
    waiting_seconds: float = 0.0
    """Spent waiting for the reader thread: the encoder idle for want of chunks."""
    encoded_with: str = ""
    """The document encoder's runtime and precision (``openvino bf16``), where recorded."""

    def skip(self, where: str, why: str) -> None:
        self.skipped.append((where, why))

    def as_dict(self, collection: str, left_out: Mapping[str, int]) -> dict[str, Any]:
        """What `index --json` prints."""
        return {
            "collection": collection,
            "documents": self.documents,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
            "encoding_seconds": round(self.encoding_seconds, 3),
            "waiting_seconds": round(self.waiting_seconds, 3),
            "encoded_with": self.encoded_with or None,
            "changes": dict(self.changes),
            "refreshed": self.refreshed,
            "skipped": [{"where": where, "why": why} for where, why in self.skipped],
            "left_out": dict(left_out),
        }


@dataclass
class _Planned:
    """A document the reader has hashed, classified and (if it is to be embedded) chunked."""

    doc: Document
    sha: str
    change: Change
    chunks: list[Chunk]
    places: list[Place] | None = None
    """Each chunk's place in lines, for a document whose text is its file's."""
    sentences: list[list[tuple[int, int]]] = field(default_factory=list)
    """Each chunk's sentences, as character spans of its text."""
    tokenized: list[Any] | None = None
    """Each chunk's input as the encoder tokenizes it, where it can be done ahead."""


_DONE = object()

Encoded = tuple["np.ndarray", "list[np.ndarray | None]"]
"""A batch's vectors, and each text's sentence vectors (see ``encode_with_sentences``)."""


class Encoding(Protocol):
    """Where batches of chunks are encoded: in this process (``LocalEncoding``), or by
    workers elsewhere (``indexer.cluster``) while this process writes what came back."""

    ahead: int
    """Batches that may be handed over and not yet taken back: what bounds the writer's
    memory; 0: each is taken back before the next is handed over."""

    def submit(self, texts: Sequence[str], spans: Sequence[Spans], prepared: Any) -> Any:
        """Hand a batch over; a ticket to ``take`` its vectors with."""
        ...

    def take(self, ticket: Any) -> Encoded:
        """The vectors of the batch ``ticket`` stands for, once encoded."""
        ...


class LocalEncoding:
    """Batches encoded in this process, one at a time, when they are taken."""

    ahead = 0

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder

    def submit(self, texts: Sequence[str], spans: Sequence[Spans], prepared: Any) -> Any:
        return texts, spans, prepared

    def take(self, ticket: Any) -> Encoded:
        return encode_with_sentences(self.encoder, *ticket)


@dataclass
class _Batch:
    """Chunks handed to the encoding, and what to do once they are written: the documents
    they complete (older points to delete) and payloads to bring up to date."""

    chunks: list[tuple[_Planned, Chunk]]
    ticket: Any
    completed: list[_Planned]
    refresh: dict[tuple[str, str], list[str]]


def _payload(
    doc: Document,
    chunk: Chunk,
    sha: str,
    n_chunks: int,
    place: Place | None,
    sentences: list[tuple[int, int]],
    sentence_vectors: Any,
) -> dict[str, object]:
    payload: dict[str, object] = {
        "doc_id": doc.doc_id,
        "chunk": chunk.index,
        "n_chunks": n_chunks,
        "content_sha": sha,
        "title": doc.title,
        "text": chunk.text,
        "source": doc.source,
        "root": doc.root,
        "ext": suffix_of(Path(doc.source)) if doc.source else "",
        "start": chunk.start,
        "end": chunk.end,
    }
    if place is not None:
        payload.update(line=place.line, column=place.column, end_line=place.end_line)
    payload["sentences"] = stored_form(sentences)
    if sentence_vectors is not None:
        payload["sentence_vectors"] = pack(sentence_vectors)
    if doc.modified:
        payload["modified"] = doc.modified
    if doc.fields:
        payload["fields"] = doc.fields
    return payload


def _in_input(chunk: Chunk, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans of a chunk's text as spans of its encoder input, which heads the text with the
    title (or, truncated, joins title and text); none where the text is not found whole."""
    shift = len(chunk.input) - len(chunk.text)
    if not chunk.input.endswith(chunk.text):
        shift = chunk.input.find(chunk.text)
        if shift < 0:
            return []
    return [(a + shift, b + shift) for a, b in spans]


def plan(corpus: Corpus, store: Store | None) -> dict[Change, list[DocKey]]:
    """What indexing ``corpus`` into ``store`` (None: a new collection) would do, without
    embedding or writing anything."""
    planner = Planner(load_manifest(store) if store is not None else {}, corpus.on_skip)
    for doc in corpus:
        visited = planner.visit(doc)
        if visited is not None:
            planner.by_change[visited[1]].append(key_of(doc))
    planner.by_change[Change.removed] = planner.gone(corpus.roots, corpus.unread)
    return planner.by_change


class Indexer:
    """Embeds what is new or changed, skips what is unchanged, deletes what is gone.

    Reading, hashing and chunking run in a thread of their own, a few batches ahead of the
    encoder, which is where the time goes.
    """

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
        encoding: Encoding | None = None,
    ) -> None:
        self.encoder = encoder
        self.encoding = encoding or LocalEncoding(encoder)
        self.store = store
        self.chunking = chunking
        self.bm25 = bm25
        self.batch_size = batch_size
        self.on_progress = on_progress
        self.report = report or IndexReport()
        self.planner = Planner(load_manifest(store), self.report.skip)
        self.stats: Bm25Stats | None = None
        """The collection's BM25 statistics, followed through every write and delete."""
        if bm25 is not None:
            self.stats = Bm25Stats.from_dict(store.metadata().get(BM25_STATS)) or Bm25Stats()
        self._stats_written = self.stats
        self._pending: list[tuple[_Planned, Chunk]] = []
        self._completed: list[_Planned] = []
        self._refresh: dict[tuple[str, str], list[str]] = {}
        """(root, new modification time) -> ids of unchanged documents to update."""
        self._in_flight: deque[_Batch] = deque()

    def run(self, documents: Iterable[Document], scope: Corpus | None = None) -> IndexReport:
        """Index ``documents``; with ``scope``, also delete what its roots no longer hold."""
        started = time.perf_counter()
        for work in self._prefetched(documents):
            self._schedule(work)
            self.on_progress(self.report)
        self._flush(ahead=0)
        if not self.planner.seen:
            self.store.finish()
            raise SourceError(NOTHING_READ + "; the collection is unchanged")
        if scope is not None:
            gone = self.planner.gone(scope.roots, scope.unread)
            self.report.changes[Change.removed.value] = len(gone)
            by_root: dict[str, list[str]] = {}
            for root, doc_id in gone:
                by_root.setdefault(root, []).append(doc_id)
            for root, ids in by_root.items():
                for start in range(0, len(ids), 256):
                    batch = tuple(ids[start : start + 256])
                    self._delete([Match("root", root), Match("doc_id", batch)])
        if self.bm25 is not None and self.stats is not None:
            self.bm25 = keep_bm25_current(self.store, self.bm25, self.stats)
        self.store.finish()
        self.report.seconds = time.perf_counter() - started
        self.on_progress(self.report)
        return self.report

    def _prefetched(self, documents: Iterable[Document]) -> Iterator[_Planned]:
        """``_prepare`` for each document, run in a reader thread a few batches ahead."""
        queue: Queue[object] = Queue(maxsize=4 * self.batch_size)

        def produce() -> None:
            try:
                for doc in documents:
                    work = self._prepare(doc)
                    if work is not None:
                        queue.put(work)
                queue.put(_DONE)
            except BaseException as exc:  # handed to the consumer, raised there
                queue.put(exc)

        Thread(target=produce, name="twinsearch-reader", daemon=True).start()
        while True:
            waited = time.perf_counter()
            item = queue.get()
            self.report.waiting_seconds += time.perf_counter() - waited
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]

    def _prepare(self, doc: Document) -> _Planned | None:
        visited = self.planner.visit(doc)
        if visited is None:
            return None
        sha, change = visited
        chunks: list[Chunk] = []
        if change is not Change.unchanged:
            chunks = list(chunk_document(doc, self.encoder.tokenizer, self.chunking))
            if not chunks:
                self.report.skip(doc.source, f"no text to index in {doc.doc_id!r}")
                return None
            self.report.chunks_planned += len(chunks)
        places = None
        if doc.lines and chunks:
            lines = Lines(doc.text)
            places = [lines.place(chunk.start, chunk.end) for chunk in chunks]
        sentences = [sentence_spans(chunk.text) for chunk in chunks]
        tokenize = getattr(self.encoder, "tokenize_documents", None)
        tokenized = tokenize([c.input for c in chunks]) if tokenize and chunks else None
        return _Planned(doc, sha, change, chunks, places, sentences, tokenized)

    def _schedule(self, work: _Planned) -> None:
        self.report.changes[work.change.value] += 1
        if work.change is Change.unchanged:
            stored = self.planner.manifest[key_of(work.doc)]
            if work.doc.modified and stored.modified != work.doc.modified:
                # Same content, new timestamp: the payload follows, the vectors stay.
                self._refresh.setdefault((work.doc.root, work.doc.modified), []).append(
                    work.doc.doc_id
                )
                self.report.refreshed += 1
                if self.report.refreshed % 1024 == 0:
                    self._flush()
            if stored.stale:
                self._completed.append(work)  # only its leftover tail to delete
            return
        self._pending.extend((work, chunk) for chunk in work.chunks)
        self._completed.append(work)
        if len(self._pending) >= self.batch_size:
            self._flush()

    def _delete(self, filter: Filter) -> None:
        """Delete the points ``filter`` matches, their terms taken off the statistics."""
        self._forget(filter)
        self.store.delete(filter)

    def _forget(self, filter: Filter) -> None:
        """Take the points ``filter`` matches off the BM25 statistics, before they are
        deleted or overwritten."""
        if self.stats is None:
            return
        chunks = terms = 0
        for _, payload in self.store.scroll([BM25_LENGTH], filter):
            chunks += 1
            terms += int(payload.get(BM25_LENGTH, 0))
        self.stats = self.stats.plus(-chunks, -terms)

    def _flush(self, ahead: int | None = None) -> None:
        """Hand what is pending to the encoding, in batches, and write what comes back,
        leaving at most ``ahead`` batches (default: as many as the encoding takes) out."""
        limit = self.encoding.ahead if ahead is None else ahead
        for work in self._completed:
            if work.chunks and key_of(work.doc) in self.planner.manifest:
                self._forget(_document_filter(key_of(work.doc)))  # all about to be replaced
        pending = self._pending
        batches = [
            pending[i : i + self.batch_size] for i in range(0, len(pending), self.batch_size)
        ]
        for number, chunks in enumerate(batches or [[]]):
            ticket = None
            if chunks:
                inputs = [c.input for _, c in chunks]
                spans = [_in_input(c, w.sentences[c.index]) for w, c in chunks]
                prepared = None
                if all(w.tokenized is not None for w, _ in chunks):
                    prepared = [w.tokenized[c.index] for w, c in chunks]  # type: ignore[index]
                ticket = self.encoding.submit(inputs, spans, prepared)
            last = number == max(len(batches) - 1, 0)
            # The documents done travel with their last chunks: deleted after them.
            self._in_flight.append(
                _Batch(
                    chunks, ticket, self._completed if last else [], self._refresh if last else {}
                )
            )
            while len(self._in_flight) > limit:
                self._write(self._in_flight.popleft())
        self._pending, self._completed, self._refresh = [], [], {}

    def _write(self, batch: _Batch) -> None:
        if batch.chunks:
            waited = time.perf_counter()
            vectors, sentence_vectors = self.encoding.take(batch.ticket)
            self.report.encoding_seconds += time.perf_counter() - waited
            inputs = [c.input for _, c in batch.chunks]
            terms: list[tuple[Any, dict[str, float]]] = [(None, {})] * len(inputs)
            if self.bm25 is not None and self.stats is not None:
                bm25 = self.bm25
                encoded = bm25.encode_with_lengths(inputs)
                self.stats = self.stats.plus(len(encoded), sum(n for _, n in encoded))
                terms = [(t, bm25_payload(n, bm25)) for t, n in encoded]
            points = [
                Point(
                    point_id(w.doc.root, w.doc.doc_id, c.index),
                    v,
                    _payload(
                        w.doc,
                        c,
                        w.sha,
                        len(w.chunks),
                        w.places[c.index] if w.places else None,
                        w.sentences[c.index],
                        s,
                    )
                    | length,
                    t,
                )
                for (w, c), v, (t, length), s in zip(
                    batch.chunks, vectors, terms, sentence_vectors, strict=True
                )
            ]
            self.store.upsert(points)
            self.report.chunks += len(points)
        for work in batch.completed:
            stored = self.planner.manifest.get(key_of(work.doc))
            if stored is not None:
                # Points beyond the new count belong to an older, longer version.
                n_chunks = len(work.chunks) or stored.n_chunks
                tail = [*_document_filter(key_of(work.doc)), Range("chunk", gte=n_chunks)]
                if work.chunks:
                    self.store.delete(tail)  # its terms were taken off before the rewrite
                else:
                    self._delete(tail)
            if work.chunks:
                self.report.documents += 1
        for (root, modified), ids in batch.refresh.items():
            for start in range(0, len(ids), 256):
                some = tuple(ids[start : start + 256])
                self.store.set_payload(
                    {"modified": modified}, [Match("root", root), Match("doc_id", some)]
                )
        if self.stats is not None and self.stats != self._stats_written:
            self.store.update_metadata({BM25_STATS: self.stats.as_dict()})
            self._stats_written = self.stats


BM25_SAMPLE_DOCS = 1000
NOTHING_READ = "nothing to index: every file and record given was skipped (reasons above)"


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
        if not head:
            raise SourceError(NOTHING_READ + "; no collection was created")
        inputs = [c.input for d in head for c in chunk_document(d, encoder.tokenizer, chunking)]
        bm25 = Bm25Settings(avg_len=round(mean_analyzed_length(inputs), 1))
        docs = chain(head, docs)
    store, model = open_for_write(client, name, encoder, chunking.as_dict(), bm25, **extra)
    return store, model, docs


def index_corpus(
    client: Client,
    name: str,
    encoder: Encoder,
    chunking: ChunkSettings,
    corpus: Corpus,
    report: IndexReport,
    *,
    batch_size: int = 128,
    on_progress: Callable[[Corpus, IndexReport], None] = lambda corpus, report: None,
    encoding: Encoding | None = None,
    **extra: Any,
) -> Store:
    """Bring collection ``name`` up to date with ``corpus``, creating it if needed; its
    chunks encoded by ``encoding`` (default: ``encoder``, in this process)."""
    store, bm25, docs = open_collection(client, name, encoder, chunking, corpus, **extra)
    indexer = Indexer(
        encoder,
        store,
        chunking,
        bm25=bm25,
        report=report,
        batch_size=batch_size,
        on_progress=lambda report: on_progress(corpus, report),
        encoding=encoding,
    )
    indexer.run(docs, scope=corpus)
    return store


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
    store = index_corpus(
        client,
        name,
        encoder,
        chunking,
        corpus,
        report,
        batch_size=batch_size,
        on_progress=on_progress,
        corpus_sha256=digest,
        complete=False,
    )
    store.update_metadata({"complete": True})
    return store, report
