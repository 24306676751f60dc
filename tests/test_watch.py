"""`twinsearch watch`: real files, real file system events, bounded waits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twinsearch.cli.app import app

runner = CliRunner()
WAIT = 30.0


def _found(data: Path, query: str) -> set[str] | None:
    """Ids found for ``query``, or None while the watcher holds the collection."""
    result = runner.invoke(app, ["search", query, "-k", "20", "--json", "--data-dir", str(data)])
    if result.exit_code != 0:
        assert "in use by another twinsearch process" in result.stderr, result.stderr
        return None
    return {hit["doc_id"] for hit in json.loads(result.stdout)}


def _until(what: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not what():
        assert time.monotonic() < deadline, "the watcher did not catch up in time"
        time.sleep(0.2)


@pytest.mark.slow
def test_watch_follows_a_create_an_atomic_save_and_a_delete(tmp_path: Path) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    docs.mkdir()
    (docs / "tides.md").write_text("# Tides\n\nThe moon pulls the sea.")
    result = runner.invoke(app, ["index", str(docs), "--model", "hashing", "--data-dir", str(data)])
    assert result.exit_code == 0, result.stderr
    watcher = subprocess.Popen(
        [sys.executable, "-m", "twinsearch.cli", "watch", "--debounce", "200"]
        + ["--data-dir", str(data)],
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("TWINSEARCH_")},
    )
    try:
        assert watcher.stderr is not None
        while not (line := watcher.stderr.readline()).startswith("watching"):
            assert line, "the watcher stopped before watching"
        (docs / "bees.md").write_text("# Bees\n\nBees dance in the hive.")  # a create
        _until(lambda: "bees.md" in (_found(data, "bees dance hive") or set()))
        # An editor's atomic save: a new file written beside, then renamed over the old.
        (docs / ".tides.md.swp").write_text("# Tides\n\nThe moon pulls the ocean, twice daily.")
        os.replace(docs / ".tides.md.swp", docs / "tides.md")
        _until(lambda: "tides.md" in (_found(data, "ocean twice daily") or set()))
        (docs / "bees.md").unlink()  # a delete
        _until(
            lambda: (
                (found := _found(data, "bees dance hive")) is not None and "bees.md" not in found
            )
        )
    finally:
        watcher.send_signal(signal.SIGINT)
        _, rest = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, rest
    assert rest.strip().splitlines()[-1] == "stopped"
    assert "warning" not in rest and "Traceback" not in rest and "KeyboardInterrupt" not in rest
