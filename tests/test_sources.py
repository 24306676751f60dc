from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from twinsearch.errors import SourceError
from twinsearch.indexer.sources import Corpus, SourceOptions

from .conftest import EXAMPLES


def _read(*paths: Path) -> tuple[list, list[tuple[str, str]]]:  # type: ignore[type-arg]
    skipped: list[tuple[str, str]] = []
    corpus = Corpus(list(paths), on_skip=lambda where, why: skipped.append((where, why)))
    docs = list(corpus)
    assert corpus.done_bytes == corpus.total_bytes
    return docs, skipped


def test_folder_is_walked_recursively_with_relative_ids_and_titles(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "a.md").write_text("Intro line.\n\n# Real Title\n\nBody.")
    (tmp_path / "sub" / "b.txt").write_text("A short title\n\nThe body of b.")
    (tmp_path / "sub" / "deeper" / "c.txt").write_text("This first line is a sentence.\nMore.")
    (tmp_path / "sub" / "ignored.py").write_text("print('not a document')")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "secret.md").write_text("# Hidden")
    docs, skipped = _read(tmp_path)
    assert skipped == []
    by_id = {d.doc_id: d for d in docs}
    assert sorted(by_id) == ["a.md", "sub/b.txt", "sub/deeper/c.txt"]
    assert by_id["a.md"].title == "Real Title"
    assert by_id["sub/b.txt"].title == "A short title"
    assert by_id["sub/deeper/c.txt"].title == "c"
    assert by_id["sub/b.txt"].source == str((tmp_path / "sub" / "b.txt").resolve())


def test_beir_jsonl_plain_and_gzipped(tmp_path: Path) -> None:
    records = [
        {"_id": "d1", "title": "One", "text": "first", "metadata": {"year": 2020}},
        {"_id": 2, "title": "", "text": "second"},
        {"_id": "d3", "title": "Title only", "text": ""},
    ]
    lines = "\n".join(json.dumps(r) for r in records) + "\n"
    (tmp_path / "c.jsonl").write_text(lines)
    with gzip.open(tmp_path / "c2.jsonl.gz", "wt") as fh:
        fh.write(lines)
    for name in ["c.jsonl", "c2.jsonl.gz"]:
        docs, skipped = _read(tmp_path / name)
        assert skipped == []
        assert [(d.doc_id, d.title, d.text) for d in docs] == [
            ("d1", "One", "first"),
            ("2", "", "second"),
            ("d3", "Title only", "Title only"),
        ]
        assert docs[0].fields == {"metadata": {"year": 2020}}


def test_bad_jsonl_lines_are_skipped_with_their_line_number(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(
        '{"_id": "ok", "text": "fine"}\n{not json\n\n["a list"]\n{"_id": "e", "text": " "}\n'
        '{"text": "no id"}\n'
    )
    docs, skipped = _read(path)
    assert [d.doc_id for d in docs] == ["ok", "c.jsonl:6"]  # no id: file and line stand in
    assert [(w.rsplit(":", 1)[1], why.split(":")[0]) for w, why in skipped] == [
        ("2", "not JSON"),
        ("4", "not an object"),
        ("5", 'no text in "text" or "title"'),
    ]


def test_binary_and_empty_files_are_skipped_and_legacy_encodings_decoded(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("Fine text")
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    french = "Le café crème et la crème brûlée sont très appréciés à Paris, où l'été est doux."
    (tmp_path / "latin1.txt").write_bytes(french.encode("latin-1"))
    (tmp_path / "utf16.txt").write_bytes("Grüße aus München".encode("utf-16"))
    (tmp_path / "empty.md").write_text("  \n")
    docs, skipped = _read(tmp_path)
    texts = {d.doc_id: d.text for d in docs}
    assert texts == {
        "good.txt": "Fine text",
        "latin1.txt": french,
        "utf16.txt": "Grüße aus München",
    }
    reasons = {Path(w).name: why for w, why in skipped}
    assert reasons == {"image.txt": "binary file", "empty.md": "empty file"}


def test_text_files_without_an_extension_are_read_and_the_rest_counted(tmp_path: Path) -> None:
    tmp_path = tmp_path / "docs"  # apart from the config file the fixture writes
    (tmp_path / "pkg").mkdir(parents=True)
    (tmp_path / "pkg" / "README").write_text("Zstandard\n\nA fast compression algorithm.")
    (tmp_path / "pkg" / "copyright").write_bytes("Copyright © 2016 Jörg".encode("latin-1"))
    (tmp_path / "pkg" / "prog").write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00")
    (tmp_path / "pkg" / "changelog.gz").write_bytes(gzip.compress(b"changes"))
    (tmp_path / "pkg" / "util.c").write_text("int main(void) { return 0; }")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main")
    corpus = Corpus([tmp_path])
    docs = {d.doc_id: d for d in corpus}
    assert sorted(docs) == ["pkg/README", "pkg/changelog.gz", "pkg/copyright"]
    assert docs["pkg/README"].title == "Zstandard"
    assert docs["pkg/copyright"].text == "Copyright © 2016 Jörg"
    assert dict(corpus.left_out) == {".c": 1, "binary (no extension)": 1, "hidden": 1}
    # --include names what to read: anything matching that holds text.
    included = Corpus([tmp_path], SourceOptions(include=("*",)))
    assert sorted(d.doc_id for d in included) == [
        "pkg/README",
        "pkg/changelog.gz",
        "pkg/copyright",
        "pkg/util.c",
    ]
    assert dict(included.left_out) == {"binary (no extension)": 1, "hidden": 1}
    # Named on its own, a text file of any name is read; a binary one is refused.
    [readme] = Corpus([tmp_path / "pkg" / "README"])
    assert readme.doc_id == "README"
    with pytest.raises(SourceError, match="not a text file"):
        Corpus([tmp_path / "pkg" / "prog"])


def test_a_folder_with_nothing_to_read_says_what_was_left_out(tmp_path: Path) -> None:
    tmp_path = tmp_path / "docs"
    tmp_path.mkdir()
    (tmp_path / "a.gz").write_bytes(gzip.compress(b"\x00\x01 binary"))
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    with pytest.raises(SourceError, match=r"left out: 1 binary \.gz, 1 \.png.*--include"):
        Corpus([tmp_path])


def test_unreadable_file_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "good.txt").write_text("Fine text")
    locked = tmp_path / "locked.txt"
    locked.write_text("secret")
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "locked.txt":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    docs, skipped = _read(tmp_path)
    assert [d.doc_id for d in docs] == ["good.txt"]
    assert skipped == [(str(locked), "unreadable: Permission denied")]


def test_missing_path_empty_folder_and_unknown_file_type_fail_before_any_work(
    tmp_path: Path,
) -> None:
    with pytest.raises(SourceError, match="no such file or folder"):
        Corpus([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.py").write_text("x = 1")
    with pytest.raises(
        SourceError, match="no .txt, .md, .markdown, .rst, .html, .htm, .pdf, gzipped text or"
    ):
        Corpus([tmp_path / "empty"])
    (tmp_path / "data.xlsx").write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00")
    with pytest.raises(SourceError, match="cannot index .*not a text file"):
        Corpus([tmp_path / "data.xlsx"])


def test_the_shipped_examples_read_cleanly() -> None:
    docs, skipped = _read(EXAMPLES / "corpus", EXAMPLES / "encyclopedia.jsonl")
    assert skipped == []
    assert len(docs) >= 30
    assert len({d.doc_id for d in docs}) == len(docs)


def test_a_file_with_several_names_is_read_once_under_its_first(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "pkg-a").mkdir(parents=True)
    (docs / "pkg-a" / "AUTHORS").write_text("Ada Lovelace\nCharles Babbage")
    (docs / "pkg-b").mkdir()
    (docs / "pkg-b" / "AUTHORS").symlink_to("../pkg-a/AUTHORS")
    (docs / "pkg-c").symlink_to(docs / "pkg-a", target_is_directory=True)
    corpus = Corpus([docs])
    assert [d.doc_id for d in corpus] == ["pkg-a/AUTHORS"]
    assert corpus.left_out["links to a file read already"] == 1
    assert corpus.left_out["linked folders, not followed"] == 1
    # Named on the command line through a linked folder, or twice: read once, no error.
    named = Corpus([docs / "pkg-a" / "AUTHORS", docs / "pkg-c" / "AUTHORS", docs / "pkg-b/AUTHORS"])
    assert [d.source for d in named] == [str(docs / "pkg-a" / "AUTHORS")]
    assert named.left_out["links to a file read already"] == 2


def test_gzipped_text_is_read_as_the_text_it_holds(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "changelog.Debian.gz").write_bytes(
        gzip.compress(b"zstd (1.5.4) unstable; urgency=medium\n\n  * New upstream release.\n")
    )
    (docs / "notes.md.gz").write_bytes(gzip.compress(b"Intro.\n\n# Notes\n\nBody."))
    (docs / "logo.png.gz").write_bytes(gzip.compress(b"\x89PNG\r\n\x1a\n\x00\x00\x00"))
    (docs / "broken.gz").write_bytes(b"\x1f\x8b not really gzip")
    corpus = Corpus([docs])
    found = {d.doc_id: d for d in corpus}
    assert sorted(found) == ["changelog.Debian.gz", "notes.md.gz"]
    assert found["changelog.Debian.gz"].text.startswith("zstd (1.5.4) unstable")
    assert found["notes.md.gz"].title == "Notes"  # as notes.md would be titled
    assert found["notes.md.gz"].lines  # its lines are those of the text it holds
    assert dict(corpus.left_out) == {"binary .gz": 2}


def test_a_gzip_bomb_is_skipped(tmp_path: Path) -> None:
    from twinsearch.indexer.formats import Skip, gunzip

    with pytest.raises(Skip, match="more than 1 MiB of text once decompressed"):
        gunzip(gzip.compress(b"a" * (2 * 2**20)), limit=2**20)
