"""`twinsearch get`: a document by the id search shows, from its file while that holds what
was indexed, else from the collection's chunks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twinsearch.cli.app import app

runner = CliRunner()

LONG = "# Long\n\n" + "".join(f"line {i}: the tide turns {i} times\n" for i in range(3, 400))


def get(data: Path, *args: str, code: int = 0) -> tuple[str, str]:
    result = runner.invoke(app, ["get", *args, "--data-dir", str(data)], catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result.stdout, result.stderr


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "long.md").write_text(LONG)
    (folder / "crlf.txt").write_bytes(b"Windows\r\n\r\n\tfirst\r\nsecond\r\n")
    (folder / "page.html").write_text("<head><title>Page</title></head><p>Moon</p>\n\n<p>Sea</p>")
    return folder


def index(data: Path, *paths: Path) -> None:
    args = ["index", *map(str, paths), "--model", "hashing", "--data-dir", str(data)]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr


def test_a_document_from_its_file(docs: Path, tmp_path: Path) -> None:
    index(tmp_path / "d", docs)
    out, said = get(tmp_path / "d", "long.md")
    assert out == LONG and said.strip() == "from the file"
    out, _ = get(tmp_path / "d", "crlf.txt")
    assert out.splitlines() == ["Windows", "", "\tfirst", "second"]
    shown = json.loads(get(tmp_path / "d", "page.html", "--json")[0])
    assert shown == {
        "id": "page.html",
        "root": str(docs.resolve()),
        "source": str((docs / "page.html").resolve()),
        "title": "Page",
        "from": "file",
        "why": None,
        "text": "Moon\nSea",  # the text indexed, not the markup
    }


def test_lines_from_a_line_numbered_as_cat_does(docs: Path, tmp_path: Path) -> None:
    index(tmp_path / "d", docs)
    out, _ = get(tmp_path / "d", "long.md:100", "-l", "3")
    assert out.splitlines() == [
        f"{n:>6}\tline {n}: the tide turns {n} times" for n in (100, 101, 102)
    ]
    out, _ = get(tmp_path / "d", "long.md:395")  # 20 by default, fewer at the end
    assert [line.split("\t")[0].strip() for line in out.splitlines()] == [
        str(n) for n in range(395, 400)
    ]
    shown = json.loads(get(tmp_path / "d", "crlf.txt:3", "-l", "2", "--json")[0])
    assert (shown["start_line"], shown["lines"]) == (3, ["\tfirst", "second"])
    assert "text" not in shown
    _, said = get(tmp_path / "d", "long.md:900", code=1)
    assert said.strip() == "error: no line 900 in long.md: it has lines 1 to 399"


def test_a_hit_as_search_shows_it_opens_at_its_line(
    docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index(tmp_path / "d", docs)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["search", "turns 250", "-k", "1", "--data-dir", "d"])
    where = result.stdout.split("  ")[2]  # "  1. 0.512 · 2/2 terms  notes/long.md:240  Long"
    assert where.startswith("notes/long.md:")
    out, _ = get(tmp_path / "d", where, "-l", "1")
    assert out.startswith(f"{where.split(':')[1]:>6}\t")


def test_from_the_index_once_the_file_changed_or_is_gone(docs: Path, tmp_path: Path) -> None:
    index(tmp_path / "d", docs)
    (docs / "long.md").write_text(LONG.replace("turns 100 times", "turned"))
    out, said = get(tmp_path / "d", "long.md:100", "-l", "1")
    assert said.strip() == "from the index: the file has changed since it was indexed"
    assert out == "   100\tline 100: the tide turns 100 times\n"  # as it was indexed
    out, _ = get(tmp_path / "d", "long.md")
    assert out == LONG  # put back together from its overlapping chunks
    (docs / "crlf.txt").unlink()
    out, said = get(tmp_path / "d", "crlf.txt", "--json")
    shown = json.loads(out)
    assert said.strip() == "from the index: the file no longer exists"
    assert (shown["from"], shown["why"]) == ("index", "the file no longer exists")
    assert shown["text"].splitlines() == ["Windows", "", "\tfirst", "second"]


def test_an_id_two_folders_share_is_named_with_its_folder(tmp_path: Path) -> None:
    for name in ("zstd", "openssl"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "README.md").write_text(f"# {name}\n\nAbout {name}.\n")
    index(tmp_path / "d", tmp_path / "zstd", tmp_path / "openssl")
    _, said = get(tmp_path / "d", "README.md", code=1)
    assert said.strip() == (
        "error: 'README.md' is more than one document; name one of: "
        "openssl/README.md, zstd/README.md"
    )
    out, _ = get(tmp_path / "d", "zstd/README.md")
    assert out == "# zstd\n\nAbout zstd.\n"
    out, _ = get(tmp_path / "d", "openssl/README.md:3")
    assert out == "     3\tAbout openssl.\n"


def test_a_missing_id_says_what_to_pass(docs: Path, tmp_path: Path) -> None:
    index(tmp_path / "d", docs)
    _, said = get(tmp_path / "d", "nope.md", code=1)
    assert said.count("\n") == 1
    assert said.startswith("error: no document 'nope.md' in collection 'default'; use an id")


def test_a_record_comes_from_the_index(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"_id": "r1", "title": "One", "text": "First record."}) + "\n")
    index(tmp_path / "d", corpus)
    out, said = get(tmp_path / "d", "r1")
    assert out == "First record.\n"
    assert said.strip() == f"from the index: a record of {corpus.resolve()}"


def test_text_between_chunks_that_do_not_overlap_keeps_its_lines(tmp_path: Path) -> None:
    text = "\n\n   Indented start\n" + "".join(f"\tline {i} of\r\nmany\n" for i in range(40))
    (tmp_path / "gaps.txt").write_text(text, newline="")
    args = ["--chunk-size", "8", "--chunk-overlap", "0"]
    result = runner.invoke(
        app,
        [
            "index",
            str(tmp_path / "gaps.txt"),
            "--model",
            "hashing",
            "--data-dir",
            str(tmp_path / "d"),
            *args,
        ],
    )
    assert result.exit_code == 0, result.stderr
    (tmp_path / "gaps.txt").unlink()
    out, said = get(tmp_path / "d", "gaps.txt")
    assert said.strip() == "from the index: the file no longer exists"
    # Only whitespace falls between chunks: line breaks come back where the lines say, so
    # every line keeps its number; what indents a line after a gap comes back as spaces.
    expected = text.replace("\r\n", "\n").splitlines()
    assert out.splitlines()[:3] == expected[:3] == ["", "", "   Indented start"]
    assert [line.strip() for line in out.splitlines()] == [line.strip() for line in expected]
