from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from twinsearch.cli.app import app
from twinsearch.cli.shell import HELP, Session
from twinsearch.collection import open_for_write
from twinsearch.encoders import HashingEncoder
from twinsearch.indexer.chunking import ChunkSettings
from twinsearch.indexer.pipeline import Indexer
from twinsearch.nouns import Document
from twinsearch.search import Searcher
from twinsearch.stores import connect


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


def test_lines_commands_ctrl_c_and_ctrl_d(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
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

    prompts: list[str] = []

    def ctrl_d_then_quit(prompt: str) -> str:
        prompts.append(prompt)
        if len(prompts) == 1:
            raise EOFError
        return ":quit"  # ends a session that went on after Ctrl-D

    capsys.readouterr()
    Session(session.searcher, 5, "dense", lambda hits: None).run(ctrl_d_then_quit)
    assert prompts == ["twinsearch> "]  # Ctrl-D at once ends the session: no second prompt
    assert capsys.readouterr() == ("", "\n")  # and ends the prompt's line


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

    where = ["--where", "ext=.md", "-w", "doc_id=tides.md"]
    result = runner.invoke(app, ["shell", *data, *where], input=":where\nmoon\n")
    assert result.exit_code == 0, result.stderr
    assert "filter: ext=.md and doc_id=tides.md" in result.stderr
    assert result.stdout.count("tides.md") == 1
    bad = runner.invoke(app, ["shell", *data, "--where", "modified>=soon"], input="moon\n")
    assert bad.exit_code == 1 and bad.stderr.startswith("error: --where 'modified>=soon'")


def test_settings_are_checked_on_entry_and_confirmed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shown: list[list[str]] = []
    searcher = _searcher(tmp_path)
    session = Session(searcher, 5, "dense", lambda hits: shown.append([h.doc_id for h in hits]))

    def said(line: str) -> str:
        capsys.readouterr()
        assert session.handle(line)
        return capsys.readouterr().err.strip()

    assert said(":k") == "k = 5"
    assert said(":k 2") == "k = 2"
    for bad in ("0", "abc", "1001", "-3", "2.5"):
        assert said(f":k {bad}") == f"error: :k takes a whole number from 1 to 1000, got {bad!r}"
    assert session.k == 2
    assert said(":mode") == "mode = dense"
    assert said(":mode Hybrid") == "mode = hybrid"
    assert said(":mode fuzzy") == "error: :mode takes dense, bm25 or hybrid, got 'fuzzy'"
    assert session.mode == "hybrid"

    assert said(":where") == "no filter"
    assert said(":where doc_id=tides.md,bees.md") == "filter: doc_id=tides.md,bees.md"
    assert said(":where doc_id=bees.md") == "filter: doc_id=tides.md,bees.md and doc_id=bees.md"
    assert said(":where doc_id=bees.md") == "filter: doc_id=tides.md,bees.md and doc_id=bees.md"
    bad = said(":where modified>=bogus")
    assert bad.startswith("error: :where 'modified>=bogus'") and "\n" not in bad
    assert "--where" not in said(":where nonsense")
    assert said(":where") == "filter: doc_id=tides.md,bees.md and doc_id=bees.md"
    said("moon flowers")  # the bad expressions left the filter as it was
    assert shown == [["bees.md"]]
    assert said(":where -") == "filter cleared"
    said("moon sea")
    assert shown[-1] == ["tides.md", "bees.md"]

    assert said(":foo") == "error: unknown command :foo; :help lists them"
    assert said(":help") == HELP

    no_bm25 = Session(Searcher(searcher.store, searcher.encoder), 5, "dense", lambda hits: None)
    session = no_bm25
    refused = said(":mode bm25")
    assert refused.startswith("error: collection 'default' has no BM25 vectors")
    assert ":mode dense" in refused and session.mode == "dense"
