"""The embedded store's own behaviour, beyond the contract every backend meets."""

from __future__ import annotations

import json
import os
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


def _sparse_points(start: int, n: int) -> list[Point]:
    from twinsearch.nouns import SparseVector

    return [
        Point(
            p.id,
            p.vector,
            {**p.payload, "text": f"words {i % 7} and {i % 11}", "root": f"/r{i % 3}"},
            SparseVector([i % 7, 100 + i % 11], [1.0 + i / 10_000, 0.5]),  # no ties
        )
        for i, p in enumerate(_points(start, n), start)
    ]


def _everything(store: edge.EdgeStore) -> dict[str, tuple[list[float], dict, list, list]]:  # type: ignore[type-arg]
    held = {}
    for page in store.points():
        for p in page:
            assert p.sparse is not None
            held[p.id] = (p.vector.round(6).tolist(), p.payload, p.sparse.indices, p.sparse.values)
    return held


def _answers(store: edge.EdgeStore, queries: list[Point]) -> list[list[tuple[float, str]]]:
    """Each query's top 10 by dense, sparse and fused scores, and under a filter: (score,
    id) pairs, ties (which fusion by rank makes) in the order of their ids."""
    from twinsearch.stores import Match

    found = []
    for q in queries:
        for kwargs in (
            {"dense": q.vector},
            {"sparse": q.sparse},
            {"dense": q.vector, "sparse": q.sparse},
            {"dense": q.vector, "filter": [Match("root", "/r1")]},
        ):
            hits = store.search(10, **kwargs)  # type: ignore[arg-type]
            found.append(sorted((-round(p.score, 5), p.id) for p in hits))
    return found


def _sealed_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int
) -> tuple[edge.EdgeClient, edge.EdgeStore]:
    """A collection of ``n`` points with sparse vectors, in sealed segments of 512."""
    monkeypatch.setattr(edge, "SEGMENT_KIB", 16)  # 512 points of 8 dimensions a segment
    client = edge.EdgeClient(tmp_path)
    store = client.collection("c")
    store.create(CollectionSpec(dim=DIM, metadata={}))
    for start in range(0, n, 200):
        store.upsert(_sparse_points(start, 200))
    store.finish()
    return client, store


def test_optimize_merges_segments_and_keeps_every_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, store = _sealed_collection(tmp_path, monkeypatch, 4000)
    before, held = len(_sealed(store)), _everything(store)
    queries = _sparse_points(10_000, 20)
    answers = _answers(store, queries)
    assert before >= 6

    monkeypatch.setattr(edge, "MERGED_KIB", 64)  # four segments' worth
    store.optimize()

    assert len(_sealed(store)) <= before // 2, _sealed(store)
    assert sum(_sealed(store)) == 4000  # merged into sealed, HNSW-indexed segments
    assert _everything(store) == held
    assert _answers(store, queries) == answers
    merged = _sealed(store)
    client.close()
    # A later run's writes still seal segments of the collection's own size (plus at most
    # the unsealed tail the last run left), not of the merged one.
    store = edge.EdgeClient(tmp_path).collection("c")
    for start in range(4000, 6000, 100):
        store.upsert(_sparse_points(start, 100))
    store.finish()
    assert store.count() == 6000
    new = list(_sealed(store))
    for size in merged:
        new.remove(size)  # the merged segments are still there
    assert new and max(new) <= 2 * 512 + 100, new
    store.close()


def _quantized_segments(store: edge.EdgeStore) -> list[bool]:
    """For each sealed segment, whether it holds int8 copies of its vectors."""
    return [
        (segment / "vector_storage-dense" / "quantized.data").is_file()
        for segment in (store.folder / "shard" / "segments").iterdir()
        if (segment / "vector_index-dense" / "graph.bin").is_file()
    ]


def test_quantize_keeps_every_point_and_the_same_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, store = _sealed_collection(tmp_path, monkeypatch, 3000)
    held, queries = _everything(store), _sparse_points(10_000, 20)
    answers = _answers(store, queries)
    assert not store.quantized() and not any(_quantized_segments(store))

    store.optimize(quantize=True)

    assert store.quantized()
    assert _quantized_segments(store) and all(_quantized_segments(store))
    assert _everything(store) == held  # the originals are kept, not replaced
    # Rescored on the originals: the same points at the same scores.
    assert _answers(store, queries) == answers
    client.close()
    # It stays on: a later run's sealed segments are quantized too.
    store = edge.EdgeClient(tmp_path).collection("c")
    segments_before = len(_quantized_segments(store))
    added = [p for start in range(3000, 5000, 100) for p in _sparse_points(start, 100)]
    for start in range(0, len(added), 100):
        store.upsert(added[start : start + 100])
    store.finish()
    assert store.quantized() and store.count() == 5000
    assert len(_quantized_segments(store)) > segments_before
    assert all(_quantized_segments(store))
    for p in added[::97]:
        [hit] = store.search(1, dense=p.vector)
        assert hit.id == p.id
    store.close()


MERGER = """
import sys
from pathlib import Path
from twinsearch.stores import edge

store = edge.EdgeClient(Path(sys.argv[1])).collection("c")
store.optimize(merged_mb=1000)
store.close()
"""


def _building(shard: Path) -> bool:
    """Whether the engine is building a merged segment (it does so in temp_segments/)."""
    try:
        return any(
            p.name.startswith("segment_builder") for p in (shard / "temp_segments").iterdir()
        )
    except FileNotFoundError:
        return False


def test_a_merge_killed_half_way_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal
    import subprocess
    import sys
    import time

    dim = 64
    monkeypatch.setattr(edge, "SEGMENT_KIB", 512)  # 2,048 points of 64 dimensions a segment
    client = edge.EdgeClient(tmp_path)
    store = client.collection("c")
    store.create(CollectionSpec(dim=dim, metadata={}))
    rng = np.random.default_rng(0)
    ids = []
    for start in range(0, 10_000, 1000):
        vectors = rng.normal(size=(1000, dim)).astype(np.float32)
        batch = [
            Point(f"00000000-0000-0000-0000-{start + i:012d}", v, {"doc_id": f"d{start + i}"})
            for i, v in enumerate(vectors)
        ]
        store.upsert(batch)
        ids += [p.id for p in batch]
    store.finish()
    segments = store.segments()
    shard = store.folder / "shard"
    client.close()

    for wait in (0.0, 0.3):
        merger = subprocess.Popen([sys.executable, "-c", MERGER, str(tmp_path)])
        deadline = time.monotonic() + 120
        while not _building(shard) and merger.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert _building(shard)
        time.sleep(wait)
        merger.send_signal(signal.SIGKILL)
        assert merger.wait() == -signal.SIGKILL  # killed while the merge was running
        store = edge.EdgeClient(tmp_path).collection("c")
        assert store.count() == len(ids)
        assert sorted(pid for pid, _ in store.scroll(["doc_id"])) == ids
        store.close()
    store = edge.EdgeClient(tmp_path).collection("c")
    store.optimize(merged_mb=1000)
    assert store.segments() < segments
    assert store.count() == len(ids)
    store.close()


def _cached_pages(folder: Path) -> int:
    """How many pages of the files under ``folder`` the page cache holds (mincore(2))."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    page = mmap.PAGESIZE
    cached = 0
    for path in folder.rglob("*"):
        size = path.stat().st_size if path.is_file() else 0
        if not size:
            continue
        with open(path, "rb") as fh:
            mapped = mmap.mmap(
                fh.fileno(), size, mmap.MAP_PRIVATE, mmap.PROT_READ | mmap.PROT_WRITE
            )
        view = (ctypes.c_char * size).from_buffer(mapped)
        pages = (size + page - 1) // page
        vec = (ctypes.c_ubyte * pages)()
        assert libc.mincore(ctypes.c_void_p(ctypes.addressof(view)), size, vec) == 0
        cached += sum(b & 1 for b in vec)
        del view
        mapped.close()
    return cached


def _evict(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)


SEARCHER = """
import sys
from pathlib import Path
from twinsearch.stores import edge
from twinsearch.stores.base import leave_open_at_exit

if sys.argv[2] == "cli":
    leave_open_at_exit()
store = edge.EdgeClient(Path(sys.argv[1])).collection("c")
print(len(store.search(10, dense=[1.0] + [0.0] * 7)))
store.close()
"""


@pytest.mark.parametrize(("process", "stays_cached"), [("cli", True), ("library", False)])
def test_a_command_line_search_leaves_what_it_read_in_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, process: str, stays_cached: bool
) -> None:
    # The engine drops a sealed segment's files from the page cache when a shard is closed,
    # so that each `twinsearch search`, a process of its own, read them from disk.
    import subprocess
    import sys

    monkeypatch.setattr(edge, "SEGMENT_KIB", 16)  # sealed segments of 512 points
    store = edge.EdgeClient(tmp_path).collection("c")
    store.create(CollectionSpec(dim=DIM, metadata={}))
    for start in range(0, 2000, 100):
        store.upsert(_points(start, 100))
    store.finish()
    assert len(_sealed(store)) >= 3
    store.close()
    _evict(store.folder)
    segments = store.folder / "shard" / "segments"
    # What a search reads of the sealed segments: their vectors and HNSW graphs.
    read = [
        segment / part
        for segment in segments.iterdir()
        if (segment / "vector_index-dense" / "graph.bin").is_file()
        for part in ("vector_storage-dense", "vector_index-dense")
    ]
    assert sum(map(_cached_pages, read)) == 0
    done = subprocess.run(
        [sys.executable, "-c", SEARCHER, str(tmp_path), process],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert done.stdout.split() == ["10"]
    cached = sum(map(_cached_pages, read))
    assert (cached > 0) == stays_cached, cached
    # The shard left open released its lock: the collection opens, whole, for writing.
    again = edge.EdgeClient(tmp_path).collection("c")
    again.upsert(_points(5000, 1))
    again.finish()
    assert again.count() == 2001
    again.close()


WRITER_LEFT_OPEN = """
import sys
from pathlib import Path
from twinsearch.stores import CollectionSpec, edge
from twinsearch.stores.base import leave_open_at_exit
from tests.test_edge_store import _points

leave_open_at_exit()
store = edge.EdgeClient(Path(sys.argv[1])).collection("c")
store.create(CollectionSpec(dim=8, metadata={}))
store.upsert(_points(0, 700))
store.finish()
store.close()
"""


def test_what_a_command_line_writer_leaves_open_is_all_on_disk(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", WRITER_LEFT_OPEN, str(tmp_path)], check=True, cwd=root)
    store = edge.EdgeClient(tmp_path).collection("c")
    assert store.count() == 700
    [hit] = store.search(1, dense=_points(0, 700)[123].vector)
    assert hit.id == _points(0, 700)[123].id
    store.close()
