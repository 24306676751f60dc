"""One contract, every backend: the results must agree."""

from __future__ import annotations

import numpy as np
import pytest

from twinsearch.errors import CollectionNotFound, ConfigError
from twinsearch.stores import Client, CollectionSpec, Match, Range
from twinsearch.types import Point

DIM = 8


def _unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def _points(n: int, doc: str = "doc") -> list[Point]:
    return [
        Point(f"00000000-0000-0000-0000-{i:012d}", _unit(i), {"doc_id": f"{doc}{i % 3}", "chunk": i})
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
    hits = store.search(_unit(7).tolist(), k=5)
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
    hits = store.search(_unit(1).tolist(), k=50, filter=[Match("doc_id", "doc2")])
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
