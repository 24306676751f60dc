"""While `twinsearch serve` holds a data folder, every other command still works on it,
through the serving process, and nothing is written by two processes at once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twinsearch.cli.app import app
from twinsearch.stores import connect
from twinsearch.stores.shared import SharedClient

runner = CliRunner()


def cli(*args: str | Path, code: int = 0):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tides.md").write_text("# Tides\n\nThe moon pulls the sea twice a day.")
    (docs / "bees.txt").write_text("Bees\n\nThe bees dance to tell the hive about flowers.")
    return docs


@pytest.fixture
def served(folder: Path, tmp_path: Path) -> Iterator[Path]:
    """A data folder with one collection, held by a real `twinsearch serve` process."""
    data = tmp_path / "data"
    cli("index", folder, "--model", "hashing", "--data-dir", data)
    server = subprocess.Popen(
        [sys.executable, "-m", "twinsearch.cli", "serve", "--port", str(_free_port())]
        + ["--data-dir", str(data)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TWINSEARCH_API_KEY": ""},
    )
    try:
        assert server.stderr is not None and server.stderr.readline().startswith("serving")
        deadline = time.monotonic() + 30
        while not (data / "serve.json").exists():
            assert time.monotonic() < deadline and server.poll() is None
            time.sleep(0.05)
        # It holds the collection, as a first search through its API would make it.
        assert cli("search", "moon", "--json", "--data-dir", data).stdout
        yield data
    finally:
        server.send_signal(signal.SIGINT)
        _, said = server.communicate(timeout=30)
    assert server.returncode == 0, said
    assert not (data / "serve.json").exists()  # and it says so when it stops


@pytest.mark.slow
def test_search_info_and_index_work_while_serve_runs(served: Path, tmp_path: Path) -> None:
    data = served
    client = connect(data_dir=data)
    assert isinstance(client, SharedClient)  # through the serving process
    client.close()
    info = json.loads(cli("info", "--json", "--data-dir", data).stdout)
    assert [(c["name"], c["documents"]) for c in info["collections"]] == [("default", 2)]
    hits = json.loads(cli("search", "moon sea", "--json", "--data-dir", data).stdout)
    assert hits[0]["doc_id"] == "tides.md"
    more = tmp_path / "more"
    more.mkdir()
    (more / "chess.md").write_text("# Chess\n\nThe queen's gambit offers a pawn.")
    result = cli("index", more, "--model", "hashing", "--data-dir", data)
    assert "1 new" in result.stderr
    hits = json.loads(cli("search", "queen gambit", "--json", "--data-dir", data).stdout)
    assert hits[0]["doc_id"] == "chess.md"
    cli("index", more, "--model", "hashing", "--data-dir", data, "-c", "other")
    cli("drop", "other", "--yes", "--data-dir", data)
    names = [
        c["name"]
        for c in json.loads(cli("info", "--json", "--data-dir", data).stdout)["collections"]
    ]
    assert names == ["default"]


@pytest.mark.slow
def test_a_second_writer_waits_its_turn(served: Path, folder: Path) -> None:
    from twinsearch.errors import CollectionLocked
    from twinsearch.nouns import Point

    first, second = connect(data_dir=served), connect(data_dir=served)
    store = first.collection("default")
    [page] = list(store.points())
    store.upsert(page[:1])  # the first client is writing the collection now
    with pytest.raises(CollectionLocked, match="being written by another twinsearch process"):
        second.collection("default").upsert([Point(page[0].id, page[0].vector, page[0].payload)])
    assert second.collection("default").count() == 2  # reading is fine meanwhile
    first.close()  # done writing: the next writer may go
    second.collection("default").upsert(page[:1])
    second.close()


@pytest.mark.slow
def test_a_record_left_by_a_server_that_died_is_ignored(folder: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    cli("index", folder, "--model", "hashing", "--data-dir", data)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    (data / "serve.json").write_text(json.dumps({"pid": int(dead.stdout), "socket": "/nowhere"}))
    assert "2 documents" in cli("info", "--data-dir", data).stdout


def test_a_connection_the_server_closed_while_idle_is_opened_again(tmp_path: Path) -> None:
    """As `index` leaves it while its model loads, longer than the server keeps an idle
    connection open."""
    from twinsearch.stores import CollectionSpec

    from .conftest import serving_store

    with serving_store(tmp_path / "data", keep_alive=0.2) as sock:
        client = SharedClient(sock, tmp_path / "data")
        client.collection("c").create(CollectionSpec(dim=4, metadata={"made": 1}))
        time.sleep(0.6)  # the server closes the idle connection meanwhile
        assert client.collection("c").metadata() == {"made": 1}
        client.close()
