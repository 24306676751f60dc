"""What `twinsearch search` prints for pipes, scripts and people: --files, --min-score,
--full and --color."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twinsearch.cli.app import app

runner = CliRunner()
ANSI = re.compile(r"\x1b\[")


def search(data: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = runner.invoke(
        app, ["search", *args, "--data-dir", str(data)], catch_exceptions=False, env=env
    )
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("search-output")
    docs = root / "docs"
    docs.mkdir()
    (docs / "tides.md").write_text("# Tides\n\nThe moon pulls the sea.\nTides come twice a day.\n")
    (docs / "moon.md").write_text("# Moon\n\nThe moon has craters.\n")
    (docs / "bees.md").write_text("# Bees\n\nBees dance in the hive.\n")
    lines = (f"The moon, line {i}, and more words to make it long.\n" for i in range(200))
    (docs / "long.md").write_text("# Long\n\n" + "".join(lines))
    result = runner.invoke(app, ["index", str(docs), "--model", "hashing", "--data-dir", str(root)])
    assert result.exit_code == 0, result.stderr
    return root


def test_files_prints_each_matching_file_once_and_nothing_else(data: Path) -> None:
    hits = json.loads(search(data, "moon", "--json", "-k", "10"))
    lines = search(data, "moon", "--files", "-k", "10").splitlines()
    assert len(lines) == len(set(lines)) == len({h["source"] for h in hits})
    assert all(Path(line).is_file() for line in lines)
    assert [Path(line).name for line in lines] == [Path(h["source"]).name for h in hits]
    assert json.loads(search(data, "moon", "--files", "--json")) == [
        str(Path(line)) for line in lines
    ]


def test_min_score_drops_hits_below_the_readable_score(data: Path) -> None:
    dense = json.loads(search(data, "moon", "--json"))
    cut = (dense[0]["similarity"] + dense[-1]["similarity"]) / 2
    kept = json.loads(search(data, "moon", "--json", "--min-score", str(cut)))
    assert kept == [h for h in dense if h["similarity"] >= cut] and 0 < len(kept) < len(dense)
    hybrid = json.loads(search(data, "moon", "--mode", "hybrid", "--json", "--min-score", "0.3"))
    assert hybrid and all(h["similarity"] >= 0.3 for h in hybrid)  # not the fusion score
    bm25 = json.loads(search(data, "bees moon", "--mode", "bm25", "--json"))
    raw = (bm25[0]["score"] + bm25[-1]["score"]) / 2  # BM25's own scale, as --json shows it
    args = ("bees moon", "--mode", "bm25", "--json", "--min-score", str(raw))
    kept = json.loads(search(data, *args))
    assert kept == [h for h in bm25 if h["score"] >= raw] and 0 < len(kept) < len(bm25)
    assert "no results" in search(data, "moon", "--min-score", "1.01")


def test_full_shows_the_whole_passage(data: Path) -> None:
    short = search(data, "long words line", "-k", "1", "--color", "never")
    full = search(data, "long words line", "-k", "1", "--full", "--color", "never")
    assert len(short.splitlines()) == 3  # the heading, the passage on one line, a blank
    passage = json.loads(search(data, "long words line", "-k", "1", "--json"))[0]["snippet"]
    assert [line.strip() for line in full.splitlines()[1:-1]] == passage.splitlines()


def test_color_never_always_and_auto_with_no_color(data: Path) -> None:
    assert not ANSI.search(search(data, "moon", "--color", "never"))
    # Piped (the runner's output is no terminal), yet coloured when asked.
    assert ANSI.search(search(data, "moon", "--color", "always"))
    assert ANSI.search(search(data, "moon", "--color", "always", env={"NO_COLOR": "1"}))
    assert not ANSI.search(search(data, "moon"))  # auto, not a terminal
    assert not ANSI.search(search(data, "moon", "--color", "auto", env={"NO_COLOR": "1"}))


def test_no_color_turns_colour_off_even_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from twinsearch.cli.common import Color, colored, out

    monkeypatch.setenv("FORCE_COLOR", "1")  # rich takes its output for a terminal
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    with colored(Color.auto):
        assert out.rich.is_terminal and out.rich.color_system is not None
    monkeypatch.setenv("NO_COLOR", "1")
    with colored(Color.auto):
        assert out.rich.color_system is None
    with colored(Color.always):
        assert out.rich.color_system is not None
    monkeypatch.setenv("NO_COLOR", "")  # empty: as if unset
    with colored(Color.auto):
        assert out.rich.color_system is not None


def test_the_terminal_shows_the_passage_with_the_query_terms_marked(data: Path) -> None:
    [hit] = json.loads(search(data, "tides twice a day", "-k", "1", "--json"))
    assert "Tides come twice a day." in hit["passage"]
    marked = {hit["passage"][a:b] for a, b in hit["highlights"]}
    assert {"Tides", "twice", "day"} <= marked
    plain = search(data, "tides twice a day", "-k", "1", "--color", "never")
    assert plain.splitlines()[1].strip() == " ".join(hit["passage"].split())
    coloured = search(data, "tides twice a day", "-k", "1", "--color", "always")
    assert re.search(r"\x1b\[1;33mtwice\x1b\[0m", coloured)
