from __future__ import annotations

from pathlib import Path

import pytest

from twinsearch.collection import open_for_search, open_for_write
from twinsearch.encoders import HashingEncoder
from twinsearch.errors import EncoderMismatch
from twinsearch.indexer.chunking import ChunkSettings
from twinsearch.indexer.pipeline import Indexer, point_id
from twinsearch.indexer.sources import Corpus
from twinsearch.nouns import Document
from twinsearch.search import search
from twinsearch.stores import Client, Match

CHUNKING = ChunkSettings(16, 4)


def _index(client: Client, name: str, encoder: HashingEncoder, docs, batch_size: int = 8):  # type: ignore[no-untyped-def]
    store, bm25 = open_for_write(client, name, encoder, CHUNKING.as_dict())
    return store, Indexer(encoder, store, CHUNKING, bm25=bm25, batch_size=batch_size).run(docs)


def _long(n_words: int, word: str = "filler") -> str:
    return " ".join(f"{word}{i}" for i in range(n_words))


def test_reindexing_the_same_documents_does_not_duplicate(
    client: Client, name: str, hashing: HashingEncoder
) -> None:
    docs = [Document(f"d{i}", _long(40), f"T{i}") for i in range(5)]
    store, first = _index(client, name, hashing, docs)
    count = store.count()
    assert first.documents == 5 and first.chunks == count > 5
    _, second = _index(client, name, hashing, docs)
    assert store.count() == count
    assert (second.chunks, second.changes["unchanged"]) == (0, 5)  # nothing embedded again


def test_a_shrunk_document_loses_its_old_tail_chunks(
    client: Client, name: str, hashing: HashingEncoder
) -> None:
    store, _ = _index(client, name, hashing, [Document("d", _long(200)), Document("e", "keep me")])
    long_count = store.count([Match("doc_id", "d")])
    _index(client, name, hashing, [Document("d", "now it is short")])
    assert long_count > 1
    assert store.count([Match("doc_id", "d")]) == 1
    assert store.count([Match("doc_id", "e")]) == 1


def test_duplicate_ids_in_one_run_are_skipped_and_counted(
    client: Client, name: str, hashing: HashingEncoder
) -> None:
    docs = [Document("same", "first text", source="a"), Document("same", "second", source="b")]
    store, report = _index(client, name, hashing, docs)
    assert report.documents == 1
    assert report.skipped == [("b", "duplicate id 'same': ids must be unique")]
    [hit] = search(store, hashing, "first text", k=5)
    assert hit.snippet == "first text"


def test_point_ids_are_deterministic_uuids() -> None:
    assert point_id("/r", "a.md", 0) == point_id("/r", "a.md", 0)
    assert point_id("/r", "a.md", 0) != point_id("/r", "a.md", 1) != point_id("/r", "b.md", 1)
    assert point_id("/zstd", "README.md", 0) != point_id("/openssl", "README.md", 0)
    assert len(point_id("/r", "x", 3)) == 36


def test_search_groups_chunks_by_document_with_the_best_chunk_as_snippet(
    client: Client, name: str, hashing: HashingEncoder
) -> None:
    # Many chunks of one document match; grouping must still return k distinct documents.
    body = " ".join(["zebra stripes savanna"] * 30) + " " + _long(30) + " giraffe necks acacia"
    docs = [Document("zoo", body, "Zoo")] + [
        Document(f"other{i}", f"zebra notes number {i} " + _long(5, "x"), f"O{i}") for i in range(6)
    ]
    store, _ = _index(client, name, hashing, docs)
    hits = search(store, hashing, "zebra stripes savanna", k=4)
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    assert len({h.doc_id for h in hits}) == 4
    assert hits[0].doc_id == "zoo" and "zebra stripes" in hits[0].snippet
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    giraffe = search(store, hashing, "giraffe necks acacia", k=1)[0]
    assert giraffe.doc_id == "zoo" and "giraffe" in giraffe.snippet and giraffe.chunk > 0


def test_ties_are_broken_by_document_id(client: Client, name: str, hashing: HashingEncoder) -> None:
    docs = [Document(d, "identical words", "") for d in ["c", "a", "b"]]
    store, _ = _index(client, name, hashing, docs)
    assert [h.doc_id for h in search(store, hashing, "identical words", k=3)] == ["a", "b", "c"]


def test_another_encoder_or_chunking_is_refused(
    client: Client, name: str, hashing: HashingEncoder
) -> None:
    _index(client, name, hashing, [Document("d", "text")])
    other = HashingEncoder(dim=64, window=32)
    with pytest.raises(EncoderMismatch, match="--model hashing:64"):
        open_for_search(client, name, other)
    with pytest.raises(EncoderMismatch, match="--model"):
        open_for_write(client, name, other, CHUNKING.as_dict())
    with pytest.raises(EncoderMismatch, match="chunked with"):
        open_for_write(client, name, hashing, ChunkSettings(16, 2).as_dict())


def test_index_a_folder_end_to_end_with_the_fake_encoder(
    client: Client, name: str, hashing: HashingEncoder, tmp_path: Path
) -> None:
    (tmp_path / "tides.txt").write_text("Tides\n\nThe moon pulls the oceans.")
    (tmp_path / "bread.md").write_text("# Bread\n\nFlour water salt yeast.")
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01\x02")
    corpus = Corpus([tmp_path])
    store, bm25 = open_for_write(client, name, hashing, CHUNKING.as_dict())
    indexer = Indexer(hashing, store, CHUNKING, bm25=bm25)
    corpus.on_skip = indexer.report.skip
    report = indexer.run(corpus)
    assert (report.documents, report.chunks) == (2, 2)
    assert report.skipped == [(str(tmp_path / "blob.txt"), "binary file")]
    [hit] = search(store, hashing, "moon oceans", k=1)
    assert (hit.doc_id, hit.title) == ("tides.txt", "Tides")
    assert hit.source == str((tmp_path / "tides.txt").resolve())


def test_progress_follows_the_chunks_embedded_not_the_reader(
    tmp_path: Path, hashing: HashingEncoder
) -> None:
    import time

    from twinsearch.cli.common import expected_chunks
    from twinsearch.indexer.pipeline import IndexReport, index_corpus
    from twinsearch.stores import connect

    class Slow(HashingEncoder):
        def encode_documents(self, texts):  # type: ignore[no-untyped-def]
            time.sleep(0.02)  # the reader, a thread of its own, finishes well before
            return super().encode_documents(texts)

    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(30):
        (folder / f"d{i}.txt").write_text(_long(40 + i, f"w{i}x"))
    corpus = Corpus([folder])
    report = IndexReport()
    seen: list[tuple[int, float | None, bool]] = []
    index_corpus(
        connect(data_dir=tmp_path / "data"),
        "c",
        Slow(dim=64, window=16),
        CHUNKING,
        corpus,
        report,
        batch_size=8,
        on_progress=lambda c, r: seen.append(
            (r.chunks, expected_chunks(c, r), c.done_bytes == c.total_bytes)
        ),
    )
    assert seen[-1] == (report.chunks, report.chunks, True)
    assert all(exp is None or done <= exp for done, exp, _ in seen)
    # All read while most of the embedding was still to do: the bar was far from full.
    assert any(read and done < report.chunks / 2 for done, _, read in seen)


class _Deferred:
    """An ``Encoding`` that encodes only when a batch is taken, as remote workers would
    return it late, and records how many batches were out at once."""

    def __init__(self, encoder: HashingEncoder, ahead: int) -> None:
        from twinsearch.indexer.pipeline import LocalEncoding

        self.local, self.ahead = LocalEncoding(encoder), ahead
        self.out, self.most_out, self.taken = 0, 0, 0

    def submit(self, texts, spans, prepared):  # type: ignore[no-untyped-def]
        self.out += 1
        self.most_out = max(self.most_out, self.out)
        return self.local.submit(texts, spans, prepared)

    def take(self, ticket):  # type: ignore[no-untyped-def]
        self.out -= 1
        self.taken += 1
        return self.local.take(ticket)


def test_batches_out_at_once_stay_bounded_and_the_points_are_the_same(
    client: Client, hashing: HashingEncoder
) -> None:
    docs = [Document(f"d{i}", _long(10 + 7 * i), f"T{i}") for i in range(12)]
    alone, _ = _index(client, "alone", hashing, docs, batch_size=4)
    deferred = _Deferred(hashing, ahead=3)
    spread, bm25 = open_for_write(client, "spread", hashing, CHUNKING.as_dict())
    report = Indexer(hashing, spread, CHUNKING, bm25=bm25, batch_size=4, encoding=deferred).run(
        docs
    )

    assert deferred.taken > 2 * deferred.ahead and deferred.most_out == deferred.ahead + 1
    assert deferred.out == 0 and report.chunks == alone.count() == spread.count()
    expected = {p.id: p for page in alone.points() for p in page}
    got = {p.id: p for page in spread.points() for p in page}
    assert sorted(got) == sorted(expected)
    for point_id_, point in expected.items():
        assert got[point_id_].payload == point.payload
        assert list(got[point_id_].vector) == pytest.approx(list(point.vector))
        assert got[point_id_].sparse == point.sparse


def test_a_shrunk_document_loses_its_tail_after_batches_written_late(
    client: Client, name: str, hashing: HashingEncoder
) -> None:
    store, _ = _index(client, name, hashing, [Document("d", _long(200)), Document("e", "keep")])
    assert store.count([Match("doc_id", "d")]) >= 10
    deferred = _Deferred(hashing, ahead=2)
    again, bm25 = open_for_write(client, name, hashing, CHUNKING.as_dict())
    Indexer(hashing, again, CHUNKING, bm25=bm25, batch_size=4, encoding=deferred).run(
        [Document("d", _long(30))]
    )
    chunks = sorted(p["chunk"] for _, p in again.scroll(["chunk"], [Match("doc_id", "d")]))
    assert chunks == list(range(len(chunks))) and 1 < len(chunks) < 10
