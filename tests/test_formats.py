"""Every supported format, read through the real Corpus, and every skip reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from twinsearch.indexer.formats import Fields
from twinsearch.indexer.sources import Corpus, SourceOptions

from .pdf import make_pdf


def read(*paths: Path, **options):  # type: ignore[no-untyped-def]
    skipped: list[tuple[str, str]] = []
    corpus = Corpus(
        list(paths), SourceOptions(**options), on_skip=lambda w, y: skipped.append((w, y))
    )
    docs = {d.doc_id: d for d in corpus}
    return docs, {Path(w).name: why for w, why in skipped}, corpus


def test_documents_of_every_kind_found_in_a_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.rst").write_text("Tides and moons\n===============\n\nThe moon pulls.\n")
    (tmp_path / "page.html").write_text(
        "<html><head><title>Bread Page</title><style>p {color: red}</style></head>"
        "<body><script>var x = 1;</script><h1>Sourdough</h1><p>Flour and water.</p></body></html>"
    )
    (tmp_path / "paper.pdf").write_bytes(
        make_pdf("Quantum tunnelling crosses barriers.", "Tunnels")
    )
    (tmp_path / "untitled.pdf").write_bytes(make_pdf("Spin glasses are disordered magnets."))
    (tmp_path / "data.csv").write_text("id,text\n1,not walked by default\n")
    docs, skipped, corpus = read(tmp_path)
    assert skipped == {}
    assert sorted(docs) == ["notes.rst", "page.html", "paper.pdf", "untitled.pdf"]
    assert docs["notes.rst"].title == "Tides and moons"
    assert docs["page.html"].title == "Bread Page"
    assert docs["page.html"].text == "Sourdough\nFlour and water."  # no script, no style
    assert (docs["paper.pdf"].title, docs["paper.pdf"].text) == (
        "Tunnels",
        "Quantum tunnelling crosses barriers.",
    )
    assert docs["untitled.pdf"].title == "untitled"  # a sentence is no title
    doc = docs["notes.rst"]
    assert doc.root == str(tmp_path.resolve()) and doc.source == str(tmp_path / "notes.rst")
    assert doc.modified.endswith("+00:00") and doc.modified[:2] == "20"
    assert corpus.done_bytes == corpus.total_bytes


def test_records_with_configurable_fields(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(
        json.dumps({"id": "r1", "name": "First", "body": "alpha text", "year": 2021}) + "\n"
    )
    (tmp_path / "b.json").write_text(
        json.dumps([{"id": "r2", "body": "beta text"}, {"id": "r3", "name": "Gamma", "body": ""}])
    )
    (tmp_path / "c.csv").write_text("id,name,body,year\nr4,Delta,delta text,2019\n")
    (tmp_path / "d.tsv").write_text("id\tbody\tscore\nr5\tepsilon text\t0.5\n")
    fields = Fields(id="id", title="name", text="body")
    docs, skipped, _ = read(
        *(tmp_path / n for n in ["a.jsonl", "b.json", "c.csv", "d.tsv"]), fields=fields
    )
    assert skipped == {}
    assert sorted(docs) == ["r1", "r2", "r3", "r4", "r5"]
    assert (docs["r1"].title, docs["r1"].text, docs["r1"].fields) == (
        "First",
        "alpha text",
        {"year": 2021},
    )
    assert (docs["r3"].title, docs["r3"].text) == ("Gamma", "Gamma")
    assert docs["r4"].fields == {"year": 2019}  # numbers in CSV cells become numbers
    assert docs["r5"].fields == {"score": 0.5}


def test_gitignore_hidden_files_and_globs(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("build/\n*.log.md\n!keep.log.md\n")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "out.md").write_text("# generated")
    (tmp_path / "drafts").mkdir()
    (tmp_path / "drafts" / ".gitignore").write_text("secret.md\n")
    (tmp_path / "drafts" / "secret.md").write_text("# secret")
    (tmp_path / "drafts" / "idea.md").write_text("# idea")
    for name in ["a.log.md", "keep.log.md", "real.md", ".hidden.md", "data.jsonl"]:
        (tmp_path / name).write_text(f"# {name}\n" if name.endswith(".md") else '{"text": "x"}\n')
    assert sorted(read(tmp_path)[0]) == ["drafts/idea.md", "keep.log.md", "real.md"]
    assert sorted(read(tmp_path, gitignore=False)[0]) == [
        "a.log.md",
        "build/out.md",
        "drafts/idea.md",
        "drafts/secret.md",
        "keep.log.md",
        "real.md",
    ]
    assert sorted(read(tmp_path, exclude=("drafts/",))[0]) == ["keep.log.md", "real.md"]
    included = read(tmp_path, include=("*.jsonl", "real.md"))[0]
    assert sorted(included) == ["data.jsonl:1", "real.md"]  # records without an id: file:line


def test_every_skip_reason_is_counted_and_the_rest_is_read(tmp_path: Path) -> None:
    (tmp_path / "ok.md").write_text("# Fine\n\nReadable.")
    (tmp_path / "big.txt").write_text("x" * 3000)
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02")
    (tmp_path / "empty.txt").write_text("\n\n")
    (tmp_path / "script.html").write_text("<html><body><script>only()</script></body></html>")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf")
    (tmp_path / "image.pdf").write_bytes(make_pdf(""))
    docs, skipped, corpus = read(tmp_path, max_bytes=2048)
    assert list(docs) == ["ok.md"]
    assert skipped["big.txt"].startswith("too large (0.0 MiB > 0 MiB)")
    assert skipped["binary.txt"] == "binary file"
    assert skipped["empty.txt"] == "empty file"
    assert skipped["script.html"] == "no text in the HTML body"
    assert skipped["broken.pdf"].startswith("unreadable PDF")
    assert skipped["image.pdf"] == "no text layer in the PDF (scanned images?)"
    assert len(corpus.unread) == 6  # their earlier versions, if any, are kept


def test_bad_record_files(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "cols.csv").write_text("id,body\n1,x\n")
    docs, skipped, _ = read(tmp_path / "bad.json", tmp_path / "cols.csv")
    assert docs == {}
    assert skipped["bad.json"].startswith("not JSON")
    assert skipped["cols.csv"] == 'no "text" column (set --text-field)'


@pytest.mark.parametrize("name", ["x.docx", "x"])
def test_binary_files_named_directly_are_refused(tmp_path: Path, name: str) -> None:
    from twinsearch.errors import SourceError

    (tmp_path / name).write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00")
    with pytest.raises(SourceError, match="not a text file"):
        Corpus([tmp_path / name])
