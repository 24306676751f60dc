"""`twinsearch index --ray`: the encoding on a Ray cluster (a head and a worker node started
here), the points the same as one process writes. Skipped where Ray is not installed
(``pip install -e '.[ray]'``)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from twinsearch.cli.app import app
from twinsearch.indexer.cluster import actor_plan
from twinsearch.stores import connect

from .conftest import EXAMPLES

runner = CliRunner()
needs_ray = pytest.mark.skipif(find_spec("ray") is None, reason="ray is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_node(log: Path, *args: str) -> subprocess.Popen[bytes]:
    """A Ray node in a process group of its own (ended as a group), up once it says so."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    with log.open("wb") as out:
        node = subprocess.Popen(
            [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + 180
    while "Ray runtime started" not in log.read_text(errors="replace"):
        if node.poll() is not None or time.monotonic() > deadline:
            _stop(node)
            pytest.fail(f"ray start failed:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.5)
    return node


def _stop(node: subprocess.Popen[bytes]) -> None:
    # The node's processes share its group; its worker processes end with its raylet.
    try:
        os.killpg(node.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    node.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A Ray head and a worker node on this machine, one CPU each; the head's address."""
    folder = Path(tempfile.mkdtemp(prefix="ts-ray-", dir="/tmp"))  # short: socket paths
    port = _free_port()
    small = ["--num-cpus=1", "--object-store-memory=100000000", "--disable-usage-stats"]
    head = _start_node(
        folder / "head.log",
        "--head",
        f"--port={port}",
        "--node-ip-address=127.0.0.1",
        f"--temp-dir={folder}",
        "--include-dashboard=false",
        f"--ray-client-server-port={_free_port()}",
        f"--dashboard-agent-listen-port={_free_port()}",
        *small,
    )
    try:
        worker = _start_node(
            folder / "worker.log",
            f"--address=127.0.0.1:{port}",
            "--node-ip-address=127.0.0.1",
            f"--dashboard-agent-listen-port={_free_port()}",
            *small,
        )
        try:
            yield f"127.0.0.1:{port}"
        finally:
            _stop(worker)
    finally:
        _stop(head)
        shutil.rmtree(folder, ignore_errors=True)  # the nodes' logs and sockets


def _points(data: Path) -> dict[str, tuple[np.ndarray, dict, object]]:
    client = connect(data_dir=data)
    try:
        store = client.collection("default")
        return {
            p.id: (np.asarray(p.vector, dtype=np.float32), p.payload, p.sparse)
            for page in store.points()
            for p in page
        }
    finally:
        client.close()


def _index(*args: str | Path) -> str:
    result = runner.invoke(app, ["index", *map(str, args)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stderr


@needs_ray
@pytest.mark.slow
def test_the_ray_path_writes_the_points_one_process_writes(cluster: str, tmp_path: Path) -> None:
    corpus = [EXAMPLES / "corpus", EXAMPLES / "encyclopedia.jsonl"]
    alone, spread = tmp_path / "alone", tmp_path / "spread"
    _index(*corpus, "--data-dir", alone)
    said = _index(*corpus, "--data-dir", spread, "--ray", cluster)
    assert "encoding on 2 Ray actors of 1 CPUs each" in said
    assert re.search(r"indexed 33 documents \(\d+ chunks\)", said)

    expected, got = _points(alone), _points(spread)
    assert sorted(got) == sorted(expected)
    for point_id, (vector, payload, sparse) in expected.items():
        other_vector, other_payload, other_sparse = got[point_id]
        assert float(vector @ other_vector) > 0.9999, payload["doc_id"]
        assert other_payload == payload
        assert other_sparse == sparse

    client = connect(data_dir=spread)
    try:
        meta = client.collection("default").metadata()
    finally:
        client.close()
    assert meta["runtime"]["used"] == ["torch fp32"]  # a small run: the model itself


@needs_ray
def test_an_address_nothing_listens_at_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "index",
            str(EXAMPLES / "corpus"),
            "--data-dir",
            str(tmp_path),
            "--ray",
            f"127.0.0.1:{_free_port()}",
        ],
    )
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach a Ray cluster at ")
    assert "ray start --head" in lines[0]
    assert not (tmp_path / "default").exists()


def test_without_ray_installed_the_option_names_the_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    result = runner.invoke(
        app, ["index", str(EXAMPLES / "corpus"), "--data-dir", str(tmp_path), "--ray", "auto"]
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: --ray needs Ray, which is not installed: pip install 'twinsearch[ray]'"
    )


def test_actors_fit_the_smallest_node_and_fill_each() -> None:
    nodes = [
        {"Alive": True, "Resources": {"CPU": 8.0}},
        {"Alive": True, "Resources": {"CPU": 2.0}},
        {"Alive": False, "Resources": {"CPU": 64.0}},
        {"Alive": True, "Resources": {}},
    ]
    assert actor_plan(nodes, None) == (5, 2)
    assert actor_plan(nodes, 1) == (10, 1)
    assert actor_plan(nodes[:1], None) == (2, 4)
