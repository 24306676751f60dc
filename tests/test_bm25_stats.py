"""BM25 statistics follow the collection: chunks and terms counted through every write and
delete, and the baked average length rewritten when it drifts (``DRIFT_TOLERANCE``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import qdrant_edge as qe

from twinsearch.collection import BM25_LENGTH, BM25_STATS, measure_bm25, open_for_write
from twinsearch.encoders import HashingEncoder
from twinsearch.indexer.chunking import ChunkSettings
from twinsearch.indexer.pipeline import Indexer, open_collection
from twinsearch.indexer.sources import Corpus
from twinsearch.nouns import Document, Point
from twinsearch.sparse import DRIFT_TOLERANCE, Bm25, Bm25Settings, Bm25Stats
from twinsearch.stores import Client, Store

CHUNKING = ChunkSettings(16, 4)
TEXT = "The tides of the sea follow the moon; the moon's pull raises two tides a day, tides."


def _build(client: Client, name: str, encoder: HashingEncoder, docs: list[Document]) -> Store:
    """Index ``docs`` as `twinsearch index` does: a new collection's avg_len from a sample."""
    store, bm25, rest = open_collection(client, name, encoder, CHUNKING, docs)
    Indexer(encoder, store, CHUNKING, bm25=bm25, batch_size=8).run(rest)
    return store


def _recorded(store: Store) -> tuple[Bm25Stats, float]:
    meta = store.metadata()
    stats = Bm25Stats.from_dict(meta[BM25_STATS])
    assert stats is not None
    return stats, float(meta["bm25"]["avg_len"])


def _weights(store: Store) -> dict[str, dict[int, float]]:
    return {
        p.id: dict(zip(p.sparse.indices, p.sparse.values, strict=True))
        for page in store.points()
        for p in page
        if p.sparse is not None
    }


def test_weights_are_qdrant_edge_bm25_and_give_back_their_length() -> None:
    for avg_len in (12.0, 91.3, 400.0):
        ours = Bm25(Bm25Settings(avg_len=avg_len))
        [(vector, length)] = ours.encode_with_lengths([TEXT])
        config = qe.Bm25Config(k=0.9, b=0.4, avg_len=avg_len, language="english")
        edge = qe.Bm25(config).embed_document(TEXT)
        assert vector.indices == list(edge.indices)
        assert vector.values == pytest.approx(list(edge.values), abs=1e-6)
        assert length == 11  # tide x3, sea, follow, moon x2, pull, rais, two, day
        assert ours.length_of(vector) == length
        moved = ours.with_avg_len(avg_len * 3)
        [(fresh, _)] = moved.encode_with_lengths([TEXT])
        assert moved.reweighed(vector, length, ours).values == pytest.approx(fresh.values)


def test_long_documents_added_later_move_the_statistics_to_a_from_scratch_builds(
    client: Client, name: str, hashing: HashingEncoder
) -> None:
    short = [Document(f"s{i}", f"tide moon sea {i}", f"Note {i}") for i in range(12)]
    long = [
        Document(f"l{i}", " ".join(f"w{i}x{j}" for j in range(120)), f"Long {i}") for i in range(6)
    ]
    grown = _build(client, name, hashing, short)
    before, avg_before = _recorded(grown)
    assert before.chunks == 12 and before.mean == pytest.approx(avg_before, abs=0.05)

    grown = _build(client, name, hashing, short + long)  # the short ones are unchanged
    after, avg_after = _recorded(grown)
    assert after.chunks > before.chunks and after.mean and after.mean > 2 * avg_before
    assert after.drift(avg_after) <= DRIFT_TOLERANCE  # the weights were rewritten

    scratch = _build(client, name + "-scratch", hashing, short + long)
    stats, avg = _recorded(scratch)
    assert stats == after == measure_bm25(grown, Bm25(Bm25Settings(avg_len=avg_after)))
    assert abs(avg_after / avg - 1) <= DRIFT_TOLERANCE
    built, rewritten = _weights(scratch), _weights(grown)
    assert built.keys() == rewritten.keys()
    for point, weights in built.items():
        assert rewritten[point] == pytest.approx(weights, rel=1e-5)


def test_changed_and_removed_documents_leave_the_statistics_exact(
    client: Client, name: str, hashing: HashingEncoder, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(4):
        (folder / f"n{i}.txt").write_text(f"Note {i}\n\n" + "tides and the moon " * (5 + 10 * i))

    def run() -> tuple[Store, Bm25 | None]:
        store, bm25, docs = open_collection(client, name, hashing, CHUNKING, Corpus([folder]))
        indexer = Indexer(hashing, store, CHUNKING, bm25=bm25, batch_size=8)
        indexer.run(docs, scope=Corpus([folder]))
        return store, indexer.bm25

    run()
    (folder / "n3.txt").write_text("Note 3\n\nshorter now")
    (folder / "n1.txt").unlink()
    (folder / "n4.txt").write_text("Note 4\n\n" + "a new note on the sea " * 12)
    store, bm25 = run()
    assert bm25 is not None
    stats, _ = _recorded(store)
    assert stats == measure_bm25(store, bm25) and stats.chunks == store.count()


def test_a_collection_without_statistics_has_them_counted_and_lengths_recorded(
    client: Client, name: str, hashing: HashingEncoder
) -> None:
    docs = [Document(f"d{i}", "the moon and the tides " * (3 + 4 * i), f"T{i}") for i in range(5)]
    store = _build(client, name, hashing, docs)
    stats, _ = _recorded(store)
    lengths = {p.id: p.payload[BM25_LENGTH] for page in store.points() for p in page}
    # As a collection made before statistics were kept: none recorded, no lengths stored.
    store.update_metadata({BM25_STATS: None})
    for page in store.points():
        store.upsert(
            [
                Point(
                    p.id,
                    p.vector,
                    {k: v for k, v in p.payload.items() if "bm25" not in k},
                    p.sparse,
                )
                for p in page
            ]
        )
    assert all(BM25_LENGTH not in p.payload for page in store.points() for p in page)
    store, _ = open_for_write(client, name, hashing, CHUNKING.as_dict())
    assert _recorded(store)[0] == stats
    assert {p.id: p.payload[BM25_LENGTH] for page in store.points() for p in page} == lengths
