"""The embedded store's own behaviour, beyond the contract every backend meets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from twinsearch.nouns import Point
from twinsearch.stores import CollectionSpec, edge

DIM = 8


def _points(start: int, n: int) -> list[Point]:
    rng = np.random.default_rng(start)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        Point(f"00000000-0000-0000-0000-{start + i:012d}", v, {"doc_id": f"d{start + i}"})
        for i, v in enumerate(vectors)
    ]


def _sealed(store: edge.EdgeStore) -> list[int]:
    """The number of points in each sealed (immutable, HNSW-indexed) segment."""
    sizes = []
    for segment in (store.folder / "shard" / "segments").iterdir():
        config = json.loads((segment / "segment.json").read_text())["config"]
        if config["vector_data"]["dense"]["index"]["type"] == "hnsw":
            matrix = segment / "vector_storage-dense" / "matrix.dat"
            sizes.append((matrix.stat().st_size - 4) // (DIM * 4))
    return sizes


def test_full_segments_are_sealed_while_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A segment of 16 KB of 8-dimensional vectors holds 512 points; commits come every
    # 2,000, so that a segment sealed only at a commit would hold far more.
    monkeypatch.setattr(edge, "SEGMENT_KIB", 16)
    monkeypatch.setattr(edge, "FLUSH_EVERY", 2000)
    client = edge.EdgeClient(tmp_path)
    store = client.collection("c")
    store.create(CollectionSpec(dim=DIM, metadata={}))
    points = []
    for start in range(0, 3000, 100):
        batch = _points(start, 100)
        store.upsert(batch)
        points += batch
    # Sealed before the end of the run, not all at once by finish().
    assert len(_sealed(store)) >= 3
    store.finish()
    assert store.count() == 3000
    # Each segment is sealed once full, not at the next commit: within one batch of the
    # bound.
    assert max(_sealed(store)) <= 512 + 100, _sealed(store)
    # Searching across segments finds each point as its own nearest neighbour.
    for p in points[::250]:
        [hit] = store.search(1, dense=p.vector)
        assert hit.id == p.id
    client.close()


KILLED_WRITER = """
import os, sys
from pathlib import Path
import numpy as np
from twinsearch.stores import CollectionSpec, edge
from twinsearch.nouns import Point

edge.FLUSH_SECONDS = float(sys.argv[2])
store = edge.EdgeClient(Path(sys.argv[1])).collection("c")
store.create(CollectionSpec(dim=4, metadata={}))
for i in range(3):
    store.upsert([Point(f"00000000-0000-0000-0000-{i:012d}", np.ones(4, np.float32), {})])
os._exit(0)  # as if killed: no close, no finish
"""


@pytest.mark.parametrize(("flush_seconds", "kept"), [(0.0, 3), (3600.0, 0)])
def test_what_a_killed_writer_flushed_is_kept(
    tmp_path: Path, flush_seconds: float, kept: int
) -> None:
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path), str(flush_seconds)], check=True
    )
    store = edge.EdgeClient(tmp_path).collection("c")
    assert store.count() == kept
    store.close()


def test_a_second_opener_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    from twinsearch.errors import CollectionLocked

    first = edge.EdgeClient(tmp_path).collection("c")
    first.create(CollectionSpec(dim=DIM, metadata={}))
    second = edge.EdgeClient(tmp_path).collection("c")
    with pytest.raises(CollectionLocked, match="in use by another twinsearch process"):
        second.count()
    first.close()
    assert second.count() == 0
    second.close()


def test_segment_size_is_set_per_new_collection(tmp_path: Path) -> None:
    from twinsearch.stores import connect

    def bound(name: str) -> int:
        config = json.loads(
            (tmp_path / "collections" / name / "shard" / "edge_config.json").read_text()
        )
        return int(config["optimizers"]["max_segment_size"])

    small = connect(data_dir=tmp_path, segment_mb=16)
    small.collection("small").create(CollectionSpec(dim=DIM, metadata={}))
    small.close()
    default = connect(data_dir=tmp_path)
    default.collection("default").create(CollectionSpec(dim=DIM, metadata={}))
    default.close()
    assert bound("small") == 16_000
    assert bound("default") == edge.SEGMENT_KIB
    # Opening an existing collection with another setting leaves it as it was made.
    again = connect(data_dir=tmp_path, segment_mb=1)
    again.collection("small").upsert(_points(0, 10))
    again.close()
    assert bound("small") == 16_000


@pytest.mark.parametrize(("tail_kb", "sealed"), [(4, True), (64, False)])
def test_a_large_last_segment_is_sealed_at_the_end_of_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tail_kb: int, sealed: bool
) -> None:
    monkeypatch.setattr(edge, "SEGMENT_KIB", 16)  # 512 points of 8 dimensions
    monkeypatch.setattr(edge, "TAIL_KIB", tail_kb)
    client = edge.EdgeClient(tmp_path)
    store = client.collection("c")
    store.create(CollectionSpec(dim=DIM, metadata={}))
    points = _points(0, 400)  # 12.8 KB: less than a segment
    store.upsert(points)
    store.finish()
    assert sum(_sealed(store)) == (400 if sealed else 0)
    config = json.loads((store.folder / "shard" / "edge_config.json").read_text())
    assert config["optimizers"]["indexing_threshold"] == 16  # put back for the next run
    for p in points[::50]:
        [hit] = store.search(1, dense=p.vector)
        assert hit.id == p.id
    client.close()


def test_file_system_failures_become_one_line_errors(tmp_path: Path) -> None:
    from twinsearch.errors import StoreError
    from twinsearch.stores import CollectionSpec, connect

    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    with pytest.raises(StoreError, match="cannot use .*data.*check that folder's permissions"):
        edge.EdgeStore(blocker / "collections", "c").create(CollectionSpec(dim=4, metadata={}))
    with pytest.raises(StoreError, match=r"unreadable .*aliases\.json"):
        connect(data_dir=blocker).collection("c")
