"""One contract, every backend: the results must agree."""

from __future__ import annotations

import numpy as np
import pytest

from twinsearch.errors import CollectionNotFound, ConfigError, StoreError
from twinsearch.nouns import Point, SparseVector
from twinsearch.stores import Client, CollectionSpec, Match, Missing, Range

DIM = 8


def _unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def _points(n: int, doc: str = "doc") -> list[Point]:
    return [
        Point(
            f"00000000-0000-0000-0000-{i:012d}", _unit(i), {"doc_id": f"{doc}{i % 3}", "chunk": i}
        )
        for i in range(n)
    ]


@pytest.fixture
def store(client: Client, name: str):  # type: ignore[no-untyped-def]
    s = client.collection(name)
    s.create(CollectionSpec(dim=DIM, metadata={"encoder": {"name": "x", "fingerprint": "f"}}))
    yield s
    client.drop(name)


def test_created_collection_is_listed_with_its_metadata(client: Client, store) -> None:  # type: ignore[no-untyped-def]
    assert store.exists()
    assert store.name in client.collections()
    assert store.metadata() == {"encoder": {"name": "x", "fingerprint": "f"}}
    assert store.count() == 0


def test_unknown_collection_is_refused_with_the_fix(client: Client, name: str) -> None:
    store = client.collection(name)
    assert not store.exists()
    with pytest.raises(CollectionNotFound, match="twinsearch index"):
        store.metadata()
    with pytest.raises(CollectionNotFound):
        client.drop(name)


def test_bad_names_are_refused(client: Client) -> None:
    for bad in ["", "../etc", "a/b", "-x", "x" * 65]:
        with pytest.raises(ConfigError):
            client.collection(bad)


def test_upsert_is_idempotent_by_id(store) -> None:  # type: ignore[no-untyped-def]
    store.upsert(_points(10))
    store.upsert(_points(10))
    assert store.count() == 10


def test_search_returns_nearest_first_with_payload(store) -> None:  # type: ignore[no-untyped-def]
    store.upsert(_points(30))
    hits = store.search(5, dense=_unit(7).tolist())
    assert len(hits) == 5
    assert hits[0].id == "00000000-0000-0000-0000-000000000007"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].payload == {"doc_id": "doc1", "chunk": 7}
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    # Same answer as brute force over the vectors.
    exact = sorted(range(30), key=lambda i: -float(_unit(i) @ _unit(7)))[:5]
    assert [h.payload["chunk"] for h in hits] == exact


def test_filters_and_delete_by_filter(store) -> None:  # type: ignore[no-untyped-def]
    store.upsert(_points(30))
    assert store.count([Match("doc_id", "doc0")]) == 10
    assert store.count([Match("doc_id", "doc0"), Range("chunk", gte=15)]) == 5
    hits = store.search(50, dense=_unit(1).tolist(), filter=[Match("doc_id", "doc2")])
    assert {h.payload["doc_id"] for h in hits} == {"doc2"} and len(hits) == 10
    store.delete([Match("doc_id", "doc0"), Range("chunk", gte=15)])
    assert store.count() == 25
    assert store.count([Match("doc_id", "doc0")]) == 5
    store.delete([Match("doc_id", "nothing")])
    assert store.count() == 25


def test_drop_removes_the_collection(client: Client, name: str) -> None:
    store = client.collection(name)
    store.create(CollectionSpec(dim=DIM, metadata={}))
    store.upsert(_points(3))
    client.drop(name)
    assert name not in client.collections()
    assert not client.collection(name).exists()


def _term_points() -> list[Point]:
    # Sparse vectors as BM25 documents: term 1 is everywhere, term 7 in two points only.
    terms = {
        0: SparseVector([1, 7], [1.0, 1.5]),
        1: SparseVector([1, 2], [1.0, 1.0]),
        2: SparseVector([1, 7, 9], [1.0, 1.0, 1.0]),
        3: SparseVector([1, 3], [1.0, 1.0]),
    }
    return [
        Point(
            f"00000000-0000-0000-0000-{i:012d}", _unit(i), {"doc_id": f"d{i}", "chunk": 0}, terms[i]
        )
        for i in terms
    ]


def test_sparse_search_weights_rare_terms_by_idf(store) -> None:  # type: ignore[no-untyped-def]
    store.upsert(_term_points())
    hits = store.search(10, sparse=SparseVector([1, 7], [1.0, 1.0]))
    # Term 1 is in every point, so its IDF is lowest: term 7 decides the order.
    assert [h.payload["doc_id"] for h in hits[:2]] == ["d0", "d2"]
    assert hits[0].score > hits[1].score > hits[2].score
    only_common = store.search(10, sparse=SparseVector([9], [1.0]))
    assert [h.payload["doc_id"] for h in only_common] == ["d2"]


def test_hybrid_fuses_dense_and_sparse_ranks(store) -> None:  # type: ignore[no-untyped-def]
    store.upsert(_term_points())
    query, terms = _unit(3).tolist(), SparseVector([7], [1.0])
    dense = [h.payload["doc_id"] for h in store.search(4, dense=query)]
    sparse = [h.payload["doc_id"] for h in store.search(4, sparse=terms)]
    assert dense[0] == "d3" and sparse == ["d0", "d2"]
    # Reciprocal rank fusion: 1/(60 + rank) summed over the lists a point appears in,
    # ranks counted from 0 as Qdrant counts them.
    rrf = {d: sum(1 / (60 + r.index(d)) for r in (dense, sparse) if d in r) for d in dense}
    fused = store.search(4, dense=query, sparse=terms)
    assert [h.payload["doc_id"] for h in fused] == sorted(rrf, key=lambda d: -rrf[d])
    for hit in fused:
        assert hit.score == pytest.approx(rrf[hit.payload["doc_id"]], rel=1e-4)
    filtered = store.search(4, dense=query, sparse=terms, filter=[Match("doc_id", "d2")])
    assert [h.payload["doc_id"] for h in filtered] == ["d2"]


def test_metadata_updates_merge_and_persist(client: Client, store) -> None:  # type: ignore[no-untyped-def]
    store.update_metadata({"complete": True, "encoder": {"name": "y"}})
    again = client.collection(store.name)
    assert again.metadata() == {"encoder": {"name": "y"}, "complete": True}


def test_scroll_returns_every_point_with_the_fields_asked(store) -> None:  # type: ignore[no-untyped-def]
    points = _points(5000)  # more than one page
    for start in range(0, 5000, 1000):
        store.upsert(points[start : start + 1000])
    seen = dict(store.scroll(["chunk"]))
    assert len(seen) == 5000
    assert seen["00000000-0000-0000-0000-000000000042"] == {"chunk": 42}
    some = dict(store.scroll(["doc_id"], [Match("doc_id", "doc1"), Range("chunk", lt=10)]))
    assert sorted(some.values(), key=str) == [{"doc_id": "doc1"}] * 3


def test_match_any_and_datetime_ranges(store) -> None:  # type: ignore[no-untyped-def]
    dates = ["2024-01-05T00:00:00+00:00", "2025-06-01T12:00:00+00:00", "2026-11-28T08:30:00+00:00"]
    store.upsert(
        [
            Point(f"00000000-0000-0000-0000-{i:012d}", _unit(i), {"doc_id": f"d{i}", "modified": d})
            for i, d in enumerate(dates)
        ]
    )
    assert store.count([Match("doc_id", ("d0", "d2", "missing"))]) == 2
    assert store.count([Range("modified", gte="2025-01-01T00:00:00Z")]) == 2
    assert store.count([Range("modified", lt="2025-06-01T12:00:00Z")]) == 1
    assert (
        store.count([Range("modified", gt="2024-01-05T00:00:00Z", lte="2025-06-01T12:00:00Z")]) == 1
    )


def test_an_alias_switches_in_one_step_and_can_be_switched_back(client: Client, name: str) -> None:
    from twinsearch.stores.base import versioned_name

    old, new = f"{name}-old", versioned_name(name, "0123456789abcdef")
    assert new == f"{name}__0123456789ab"
    for target, n in ((old, 3), (new, 5)):
        s = client.collection(target)
        s.create(CollectionSpec(dim=DIM, metadata={"encoder": {"name": target}}))
        s.upsert(_points(n))
    assert client.switch_alias(name, old) is None
    assert client.collection(name).count() == 3
    assert client.switch_alias(name, new) == old
    assert client.aliases() == {name: new}
    assert client.collection(name).metadata() == {"encoder": {"name": new}}
    assert client.switch_alias(name, old) == new  # the way back
    assert client.collection(name).count() == 3
    with pytest.raises(CollectionNotFound):
        client.switch_alias(name, f"{name}-missing")
    client.drop(name)  # drops what the alias stands for, and the alias with it
    assert old not in client.collections() and name not in client.aliases()
    client.drop(new)


def test_points_reads_back_vectors_and_payloads(store) -> None:  # type: ignore[no-untyped-def]
    written = _points(5)
    first = written[0]
    written[0] = Point(first.id, first.vector, first.payload, SparseVector([3, 9], [0.5, 2.0]))
    store.upsert(written)
    read = sorted((p for page in store.points() for p in page), key=lambda p: p.id)
    assert [p.id for p in read] == [p.id for p in written]
    for got, want in zip(read, written, strict=True):
        assert np.allclose(got.vector, want.vector, atol=1e-6)
        assert got.payload == want.payload
    assert read[0].sparse == SparseVector([3, 9], [0.5, 2.0])


def test_delete_points_by_id_leaves_the_rest(store) -> None:  # type: ignore[no-untyped-def]
    points = _points(6)
    store.upsert(points)
    store.delete_points([points[0].id, points[4].id, "00000000-0000-0000-0000-999999999999"])
    assert sorted(pid for pid, _ in store.scroll(["chunk"])) == sorted(
        p.id for i, p in enumerate(points) if i not in (0, 4)
    )


def test_set_payload_changes_matching_points_only(store) -> None:  # type: ignore[no-untyped-def]
    store.upsert(_points(6))
    store.set_payload({"modified": "2019-05-01T00:00:00+00:00"}, [Match("doc_id", "doc1")])
    changed = {
        p["chunk"]: p.get("modified") for _, p in store.scroll(["chunk", "modified", "doc_id"])
    }
    assert changed == {i: "2019-05-01T00:00:00+00:00" if i % 3 == 1 else None for i in range(6)}
    # The vectors are untouched: the nearest point to each one is still itself.
    for i, point in enumerate(_points(6)):
        assert store.search(1, dense=point.vector)[0].payload["chunk"] == i


def test_missing_matches_points_without_the_field(store) -> None:  # type: ignore[no-untyped-def]
    points = _points(4)
    points[1].payload["lang"] = "en"
    store.upsert(points)
    assert store.count([Missing("lang")]) == 3
    assert store.count([Missing("doc_id")]) == 0


def test_optimize_keeps_every_point_and_counts_segments(store) -> None:  # type: ignore[no-untyped-def]
    points = _points(50)
    store.upsert(points)
    store.finish()
    assert store.segments() >= 1
    if type(store).__name__ == "SharedStore":  # held by `twinsearch serve`: refused
        with pytest.raises(StoreError, match="stop serve, run `twinsearch optimize`"):
            store.optimize()
        return
    before, after = store.optimize()
    assert 1 <= after <= before
    assert store.count() == 50
    [hit] = store.search(1, dense=points[7].vector)
    assert hit.id == points[7].id
    assert not store.quantized()
    store.optimize(quantize=True)
    # qdrant-client's in-process engine scans exactly and keeps no quantized copies.
    assert store.quantized() == (type(store).__name__ != "ServerStore" or not _in_process(store))
    assert store.count() == 50
    [hit] = store.search(1, dense=points[7].vector)
    assert hit.id == points[7].id


def _in_process(store) -> bool:  # type: ignore[no-untyped-def]
    return bool(store._client.in_process)
