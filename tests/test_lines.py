"""Where a hit is in its file, in lines and columns, as an editor counts them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twinsearch.cli.app import app
from twinsearch.documents import Lines, split_lines

runner = CliRunner()


def cli(*args: str | Path) -> str:
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def test_line_breaks_are_counted_as_files_count_them() -> None:
    text = "one\r\ntwo\rthree\n\tfour\n"
    lines = Lines(text)
    assert [lines.line_of(text.index(w)) for w in ("one", "two", "three", "four")] == [1, 2, 3, 4]
    place = lines.place(text.index("four"), text.index("four") + 4)
    assert (place.line, place.column, place.end_line) == (4, 2, 4)  # the tab is one column
    assert lines.place(0, text.index("three") + 5).end_line == 3
    assert split_lines(text) == ["one", "two", "three", "\tfour"]
    assert split_lines("no break") == ["no break"]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "crlf.txt").write_bytes(b"Windows\r\n\r\nfirst\r\nsecond crlfword here\r\n")
    (docs / "old-mac.txt").write_bytes(b"Mac\rline two\r\tcrword after a tab\r")
    (docs / "unicode.md").write_text("# Ünïcödé\n\n日本語 😀 ünïcödéword here\n", encoding="utf-8")
    # The passage is mid-file: after CRLF lines, a tab, and characters beyond the BMP.
    prose = [f"Sentence {i} tells of plain filler matter." for i in range(12)]
    prose[7] = "\t😀 Le café ☕ sert la midword réponse ici."
    (docs / "mixed.txt").write_bytes("\r\n".join(["Mixed", "", *prose]).encode("utf-8"))
    long = "# Long\n\n" + "".join(f"line {i} filler{i} text\n" for i in range(3, 300))
    (docs / "long.md").write_text(long + "the longword at the end\n")
    (docs / "page.html").write_text(
        "<html><head><title>Page</title></head><body>\n\n<p>htmlword</p></body></html>"
    )
    cli("index", docs, "--model", "hashing", "--data-dir", tmp_path / "d")
    return tmp_path / "d"


def _top(data: Path, word: str) -> dict[str, object]:
    hits = json.loads(cli("search", word, "--json", "-k", "1", "--data-dir", data))
    return dict(hits[0])


def _file_lines(source: str) -> list[str]:
    """The file's lines as an editor shows them (every break: \\n, \\r\\n, \\r)."""
    return re.split(r"\r\n|\r|\n", Path(source).read_bytes().decode("utf-8"))


@pytest.mark.parametrize("word", ["crlfword", "crword", "ünïcödéword", "longword", "midword"])
def test_a_hit_in_a_text_file_says_where_its_passage_starts(data: Path, word: str) -> None:
    hit = _top(data, word)
    line, column, end_line = hit["line"], hit["column"], hit["end_line"]
    assert isinstance(line, int) and isinstance(column, int) and isinstance(end_line, int)
    first_word = re.match(r"\S+", str(hit["passage"]))
    assert first_word is not None
    lines = _file_lines(str(hit["source"]))
    assert lines[line - 1][column - 1 :].startswith(first_word.group())
    last_word = str(hit["passage"]).split()[-1]
    assert lines[end_line - 1].rstrip().endswith(last_word)
    assert word in str(hit["passage"])


def test_the_places_of_each_kind_of_text(data: Path) -> None:
    crlf = _top(data, "crlfword")
    assert (crlf["line"], crlf["column"], crlf["end_line"]) == (1, 1, 4)
    unicode = _top(data, "ünïcödéword")
    assert (unicode["line"], unicode["end_line"]) == (1, 3)
    longest = _top(data, "longword")
    assert int(str(longest["chunk"])) > 0 and int(str(longest["line"])) > 1
    assert longest["end_line"] == 300  # the last line of the file


def test_a_passage_mid_file_has_its_own_line_and_column(data: Path) -> None:
    hit = _top(data, "midword")
    passage = str(hit["passage"])
    assert passage.startswith("😀 Le café ☕ sert la midword")
    # Line 10 of the file ("Mixed", a blank line, then the sentences), after the tab.
    assert (hit["line"], hit["column"]) == (10, 2)
    assert hit["end_line"] == 10 + passage.count("\r\n")
    assert _file_lines(str(hit["source"]))[9][1:] == passage.split("\r\n")[0]
    [(start, end)] = hit["highlights"]  # type: ignore[misc]
    assert passage[start:end] == "midword"


def test_an_html_hit_has_no_line_and_shows_its_id(data: Path) -> None:
    hit = _top(data, "htmlword")
    assert (hit["line"], hit["column"], hit["end_line"]) == (None, None, None)
    shown = cli("search", "htmlword", "-k", "1", "--data-dir", data, "--color", "never")
    assert re.search(r"1\. [^ ]+( · \S+ terms)?  page\.html  Page", shown)


def test_the_terminal_shows_file_and_line_relative_to_here(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(data.parent)
    shown = cli("search", "longword", "-k", "1", "--data-dir", data)
    hit = _top(data, "longword")
    assert f"  docs/long.md:{hit['line']}  Long" in shown
    monkeypatch.chdir(data)  # not above the file: the whole path
    shown = cli("search", "longword", "-k", "1", "--data-dir", data)
    assert f"  {hit['source']}:{hit['line']}  Long" in shown
