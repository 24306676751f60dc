"""What only the server backend does: cluster layout, retries, parallel uploads."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from twinsearch.errors import ConfigError, StoreError
from twinsearch.nouns import Point
from twinsearch.stores import CollectionSpec, ServerOptions, connect
from twinsearch.stores.server import ServerClient


def test_layout_defaults_for_one_node_and_for_a_cluster() -> None:
    assert ServerOptions().layout(1) == (1, 1, 1)
    assert ServerOptions().layout(3) == (6, 2, 1)
    assert ServerOptions(shards=4, replicas=3, write_consistency=2).layout(3) == (4, 3, 2)
    assert ServerOptions(replicas=3).layout(1) == (1, 1, 1)  # no more copies than nodes


def test_read_consistency_is_checked() -> None:
    from qdrant_client import models

    for setting, sent in [
        (None, None),
        ("majority", models.ReadConsistencyType.MAJORITY),
        ("2", 2),
    ]:
        client = ServerClient(":memory:", options=ServerOptions(read_consistency=setting))
        assert client.read_consistency == sent
        client.close()
    with pytest.raises(ConfigError, match="majority"):
        ServerClient(":memory:", options=ServerOptions(read_consistency="most"))


class Flaky:
    """Stands between the store and qdrant-client: the first ``failures`` calls fail the
    way a restarting server fails."""

    def __init__(self, real, failures: int) -> None:  # type: ignore[no-untyped-def]
        self.real, self.failures, self.calls = real, failures, 0

    def upsert(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        return self.real.upsert(*args, **kwargs)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.real, name)


def _points(n: int) -> list[Point]:
    rng = np.random.default_rng(0)
    return [
        Point(f"00000000-0000-0000-0000-{i:012d}", rng.normal(size=4).astype(np.float32), {"i": i})
        for i in range(n)
    ]


def test_uploads_are_retried_with_backoff_then_fail_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import twinsearch.stores.server as server

    monkeypatch.setattr(server, "RETRY_FIRST_DELAY", 0.001)
    client = connect(url=":memory:")
    store = client.collection("c")
    store.create(CollectionSpec(dim=4, metadata={}))
    flaky = Flaky(store._qc, failures=3)
    store._qc = flaky
    store.upsert(_points(10))
    assert flaky.calls == 4 and store.count() == 10

    store._qc = Flaky(flaky.real, failures=100)
    with pytest.raises(StoreError, match="Connection refused"):
        store.upsert(_points(3))
    assert store._qc.calls == server.RETRIES + 1


class Concurrent:
    """Counts how many uploads are in flight at once; the in-process engine itself takes
    one writer at a time, as a server does not need."""

    def __init__(self, real) -> None:  # type: ignore[no-untyped-def]
        self.real, self.calls, self.in_flight, self.most = real, 0, 0, 0
        self.lock, self.engine = threading.Lock(), threading.Lock()

    def upsert(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        with self.lock:
            self.calls += 1
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        time.sleep(0.02)
        with self.engine:
            result = self.real.upsert(*args, **kwargs)
        with self.lock:
            self.in_flight -= 1
        return result

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.real, name)


def test_large_writes_go_up_in_parallel_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    import twinsearch.stores.server as server

    monkeypatch.setattr(server, "UPLOAD_BATCH", 100)
    client = connect(url=":memory:", server=ServerOptions(parallel=3))
    store = client.collection("c")
    store.create(CollectionSpec(dim=4, metadata={}))
    counting = Concurrent(store._qc)
    store._qc = counting
    client.in_process = False  # writes as to a server; Concurrent keeps the engine safe
    store.upsert(_points(1050))
    assert counting.calls == 11 and store.count() == 1050
    assert counting.most == 3


def test_a_reindex_on_a_server_switches_its_alias(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from twinsearch.cli.index import _index
    from twinsearch.indexer.pipeline import IndexReport
    from twinsearch.indexer.sources import Corpus
    from twinsearch.settings import Settings

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("tides and the moon")
    (folder / "b.txt").write_text("plants and sunlight")
    client = connect(url=":memory:")
    first = Settings(data_dir=tmp_path / "data", model="hashing", collection="notes")
    _index(client, first, Corpus([folder]), IndexReport(), False)
    [old] = client.collections()
    assert old.startswith("notes__") and client.aliases() == {"notes": old}

    second = Settings(data_dir=tmp_path / "data", model="hashing:32", collection="notes")
    _index(client, second, Corpus([folder]), IndexReport(), True)
    new = client.aliases()["notes"]
    assert new != old and sorted(client.collections()) == sorted([old, new])
    assert client.collection("notes").metadata()["encoder"]["dim"] == 32
    assert client.switch_alias("notes", old) == new  # and back, atomically
    assert client.collection("notes").count() == 2


def test_errors_that_will_not_go_away_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    client = connect(url=":memory:")
    store = client.collection("c")
    store.create(CollectionSpec(dim=4, metadata={}))

    class Refused(Exception):
        status_code = 400

    calls = []

    def upsert(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        raise Refused("Bad request: wrong vector size")

    monkeypatch.setattr(store._qc, "upsert", upsert)
    with pytest.raises(StoreError, match="wrong vector size"):
        store.upsert(_points(2))
    assert len(calls) == 1


def test_a_plain_server_collection_is_not_reindexed_into_a_dead_end(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from twinsearch.cli.index import _index
    from twinsearch.indexer.pipeline import IndexReport
    from twinsearch.indexer.sources import Corpus
    from twinsearch.settings import Settings

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("tides and the moon")
    client = connect(url=":memory:")
    plain = client.collection("plain")
    plain.create(
        CollectionSpec(dim=256, metadata={"encoder": {"name": "hashing", "fingerprint": "x"}})
    )
    settings = Settings(data_dir=tmp_path / "data", model="hashing:32", collection="plain")
    with pytest.raises(StoreError, match="not an alias"):
        _index(client, settings, Corpus([folder]), IndexReport(), True)
    assert client.collections() == ["plain"]  # nothing was built


def test_a_server_that_does_not_answer_is_named_with_the_fix() -> None:
    from twinsearch.errors import StoreError
    from twinsearch.stores import connect

    client = connect(url="http://127.0.0.1:1")
    with pytest.raises(StoreError, match=r"cannot reach Qdrant at http://127.0.0.1:1: .*start it"):
        client.collections()
