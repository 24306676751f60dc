from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from twinsearch.cli.app import app
from twinsearch.cli.shell import Session
from twinsearch.collections import open_for_write
from twinsearch.encoders import HashingEncoder
from twinsearch.indexer.chunking import ChunkSettings
from twinsearch.indexer.pipeline import Indexer
from twinsearch.search import Searcher
from twinsearch.stores import connect
from twinsearch.types import Document


def _searcher(tmp_path: Path) -> Searcher:
    encoder = HashingEncoder(64)
    client = connect(data_dir=tmp_path / "data")
    chunking = ChunkSettings(64, 8)
    store, bm25 = open_for_write(client, "default", encoder, chunking.as_dict())
    docs = [
        Document("tides.md", "the moon pulls the sea", "Tides", source="x.md"),
        Document("bees.md", "bees dance for flowers", "Bees", source="y.md"),
    ]
    Indexer(encoder, store, chunking, bm25=bm25).run(docs)
    return Searcher.for_store(store, encoder)


def test_lines_commands_ctrl_c_and_ctrl_d(tmp_path: Path) -> None:
    shown: list[list[str]] = []
    session = Session(
        _searcher(tmp_path), 5, "dense", lambda hits: shown.append([h.doc_id for h in hits])
    )
    lines = iter(
        [
            "",
            "   ",
            "moon sea",
            ":k 1",
            KeyboardInterrupt,
            "bees",
            ":mode bm25",
            "flowers",
            ":where doc_id=tides.md",
            "flowers",
            ":nonsense",
            ":quit",
            "never read",
        ]
    )

    def read(prompt: str) -> str:
        item = next(lines)
        if item is KeyboardInterrupt:
            raise KeyboardInterrupt
        return item  # type: ignore[return-value]

    session.run(read)
    assert shown == [["tides.md", "bees.md"], ["bees.md"], ["bees.md"], []]
    assert next(lines) == "never read"  # :quit ended the loop
    ended = Session(session.searcher, 5, "dense", lambda hits: None)
    ended.run(lambda prompt: (_ for _ in ()).throw(EOFError()))  # Ctrl-D at once


def test_shell_command_end_to_end(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "tides.md").write_text("# Tides\n\nThe moon pulls the sea.")
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]
    assert runner.invoke(app, ["index", str(folder), "--model", "hashing", *data]).exit_code == 0
    result = runner.invoke(app, ["shell", *data], input="moon\n\n:k 1\nsea\n")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("tides.md") == 2
    assert "results in" in result.stderr and "ms" in result.stderr
