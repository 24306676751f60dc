"""Re-running `twinsearch index` on a folder that changed: through the real CLI, with the
hashing test encoder so the runs take milliseconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twinsearch.cli.app import app
from twinsearch.indexer.changes import load_manifest
from twinsearch.indexer.pipeline import point_id
from twinsearch.nouns import Point
from twinsearch.stores import Match, connect

runner = CliRunner()


def cli(*args: str | Path, code: int = 0):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def index(folder: Path, data: Path, *extra: str):  # type: ignore[no-untyped-def]
    return cli("index", folder, "--model", "hashing", "--data-dir", data, "--json", *extra)


def summary(result) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """What a run with --json says it changed."""
    return dict(json.loads(result.stdout)["changes"])


def ids(data: Path, query: str = "the", k: int = 50, *where: str) -> list[str]:
    args = ["search", query, "-k", str(k), "--json", "--data-dir", data]
    for w in where:
        args += ["--where", w]
    return sorted(hit["doc_id"] for hit in json.loads(cli(*args).stdout))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in {
        "tides.md": "# Tides\n\nThe moon pulls the sea twice a day.",
        "bread.md": "# Bread\n\nThe flour, the water, the salt. " + "Knead the dough. " * 200,
        "bees.txt": "Bees\n\nThe bees dance to tell the hive about flowers.",
        "chess.txt": "Chess\n\nThe queen's gambit offers the pawn.",
    }.items():
        (docs / name).write_text(text)
    return docs


def test_edit_add_delete_rename_and_touch(folder: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = index(folder, data)
    assert summary(first) == {"new": 4, "changed": 0, "unchanged": 0, "removed": 0}
    chunks = json.loads(cli("info", "--json", "--data-dir", data).stdout)["collections"][0]
    assert chunks["documents"] == 4 and chunks["chunks"] > 4

    (folder / "tides.md").write_text("# Tides\n\nThe moon and the sun pull the sea.")  # edit
    (folder / "bread.md").write_text("# Bread\n\nThe short version now.")  # edit, shrinks
    (folder / "new.md").write_text("# New\n\nThe newest note.")  # add
    (folder / "chess.txt").unlink()  # delete
    (folder / "bees.txt").rename(folder / "insects.txt")  # rename
    os.utime(folder / "tides.md")

    dry = cli("index", folder, "--dry-run", "--data-dir", data)
    assert sorted(dry.stdout.splitlines()) == [
        "changed\tbread.md",
        "changed\ttides.md",
        "new\tinsects.txt",
        "new\tnew.md",
        "removed\tbees.txt",
        "removed\tchess.txt",
    ]
    assert "dry run, nothing changed: 2 new, 2 changed, 0 unchanged, 2 removed" in dry.stderr
    assert ids(data) == ["bees.txt", "bread.md", "chess.txt", "tides.md"]  # untouched

    second = index(folder, data)
    assert summary(second) == {"new": 2, "changed": 2, "unchanged": 0, "removed": 2}
    assert ids(data) == ["bread.md", "insects.txt", "new.md", "tides.md"]
    info = json.loads(cli("info", "--json", "--data-dir", data).stdout)["collections"][0]
    assert (info["documents"], info["chunks"]) == (4, 4)  # bread.md lost its old tail

    os.utime(folder / "new.md")  # touched, not edited
    third = index(folder, data)
    assert summary(third) == {"new": 0, "changed": 0, "unchanged": 4, "removed": 0}
    assert "indexed 0 documents (0 chunks)" in third.stderr


def test_an_unreadable_file_keeps_its_earlier_version(folder: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    index(folder, data)
    (folder / "bees.txt").write_bytes(b"\x00 now binary")
    result = index(folder, data)
    assert "skipped" in result.stderr and summary(result)["removed"] == 0
    assert "bees.txt" in ids(data)


def test_other_roots_are_left_alone(folder: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.md").write_text("# X\n\nThe other folder.")
    index(folder, data)
    index(other, data)
    assert "x.md" in ids(data) and "tides.md" in ids(data)
    (other / "x.md").unlink()
    (other / "y.md").write_text("# Y\n\nThe replacement.")
    assert summary(index(other, data)) == {"new": 1, "changed": 0, "unchanged": 0, "removed": 1}
    assert ids(data) == ["bees.txt", "bread.md", "chess.txt", "tides.md", "y.md"]


def test_a_left_over_tail_of_an_older_version_is_cleaned_up(tmp_path: Path) -> None:
    """As a run killed between writing a shorter version and deleting the old tail leaves it."""
    client = connect(data_dir=tmp_path / "data")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nThe only document.")
    index(folder, tmp_path / "data")
    store = client.collection("default")
    [(pid, payload)] = list(store.scroll(["doc_id", "chunk", "n_chunks", "content_sha", "root"]))
    tail = dict(payload, chunk=1, content_sha="older")
    store.upsert([Point(point_id(payload["root"], "a.md", 1), [1.0] + [0.0] * 255, tail)])
    assert load_manifest(store)[(payload["root"], "a.md")].stale
    client.close()
    result = index(folder, tmp_path / "data")
    assert summary(result)["unchanged"] == 1
    client = connect(data_dir=tmp_path / "data")
    assert client.collection("default").count([Match("doc_id", "a.md")]) == 1
    client.close()


def test_where_filters(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nThe apple.")
    (folder / "b.txt").write_text("B\n\nThe banana.")
    old = time.time() - 400 * 86400
    os.utime(folder / "b.txt", (old, old))
    (tmp_path / "papers.csv").write_text(
        "_id,title,text,year,venue\n"
        "p1,One,the first paper,2019,ACL\n"
        "p2,Two,the second paper,2023,SIGIR\n"
    )
    data = tmp_path / "data"
    index(folder, data)
    index(tmp_path / "papers.csv", data)
    assert ids(data) == ["a.md", "b.txt", "p1", "p2"]
    assert ids(data, "the", 50, "ext=md") == ["a.md"]
    assert ids(data, "the", 50, "ext=.csv") == ["p1", "p2"]
    assert ids(data, "the", 50, "year>=2020") == ["p2"]
    assert ids(data, "the", 50, "year<2020", "venue=ACL") == ["p1"]
    assert ids(data, "the", 50, "venue=ACL,SIGIR") == ["p1", "p2"]
    cutoff = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 30 * 86400))
    assert ids(data, "the", 50, f"modified<{cutoff}") == ["b.txt"]
    assert ids(data, "the", 50, "title=One") == ["p1"]
    bad = cli("search", "x", "--where", "year>>1", "--data-dir", data, code=1)
    assert "--where 'year>>1': > needs a number or a date" in bad.stderr
    bad = cli("search", "x", "--where", "year", "--data-dir", data, code=1)
    assert "cannot read --where 'year': write KEY=VALUE" in bad.stderr


def test_resume_after_kill_9(tmp_path: Path) -> None:
    """A run killed mid-way loses nothing committed; the next one finishes the job without
    duplicates and without embedding again what was already stored."""
    total = 20_000
    corpus = tmp_path / "big.jsonl"
    words = "the quick brown fox jumps over a lazy dog while rivers run to the sea".split()
    with corpus.open("w") as fh:
        for i in range(total):  # 40 words: one chunk each
            text = " ".join(words[(i + j) % len(words)] for j in range(40)) + f" doc{i}"
            fh.write(json.dumps({"_id": f"d{i}", "title": f"Doc {i}", "text": text}) + "\n")
    data = tmp_path / "data"
    # Commits every 1000 points rather than 5000, so that some land within the second and a
    # half before the kill, on any machine.
    run = (
        "import sys; from twinsearch.stores import edge; edge.FLUSH_EVERY = 1000; "
        "from twinsearch.cli.app import app; app(sys.argv[1:])"
    )
    cmd = [sys.executable, "-c", run, "index", str(corpus), "--model", "hashing"]
    proc = subprocess.Popen([*cmd, "--data-dir", str(data)], stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not (data / "collections/default/collection.json").exists():
        time.sleep(0.05)
    time.sleep(1.5)  # let some batches land
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    counts = summary(index(corpus, data))
    assert counts["unchanged"] > 0, "nothing had been committed before the kill"
    assert counts["new"] > 0, "the first run finished before it was killed"
    assert counts["new"] + counts["changed"] + counts["unchanged"] == total
    info = json.loads(cli("info", "--json", "--data-dir", data).stdout)["collections"][0]
    assert info["documents"] == info["chunks"] == total  # all there, none twice
    again = index(corpus, data)
    assert summary(again) == {"new": 0, "changed": 0, "unchanged": total, "removed": 0}


def test_reindex_with_another_model_switches_only_when_complete(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(3):
        (folder / f"n{i}.txt").write_text(f"note {i} about tides and the moon")
    data = tmp_path / "data"
    index(folder, data)
    info = json.loads(cli("info", "--json", "--data-dir", data).stdout)
    [old] = info["collections"]
    assert old["name"] == "default" and old["aliases"] == []

    result = cli("index", folder, "--model", "hashing:32", "--reindex", "--data-dir", data)
    assert "searches use 'default' until it is complete" in result.stderr
    info = json.loads(cli("info", "--json", "--data-dir", data).stdout)
    new = next(c for c in info["collections"] if c["name"] != "default")
    assert new["name"].startswith("default__") and new["aliases"] == ["default"]
    assert new["dim"] == 32 and new["documents"] == 3
    # Searches now use the new model's collection, without being told the model.
    hits = json.loads(cli("search", "tides", "--json", "--data-dir", data).stdout)
    assert len(hits) == 3
    cli("search", "tides", "--model", "hashing", "--data-dir", data, code=1)

    # Dropping the name would uncover the old collection: refused, with the way out.
    refused = cli("drop", "default", "-y", "--data-dir", data, code=1)
    assert "twinsearch alias default default" in refused.stderr
    # The old collection is kept whole, and one command switches back.
    cli("alias", "default", "default", "--data-dir", data)
    assert cli("alias", "--data-dir", data).stdout == ""
    cli("search", "tides", "--model", "hashing", "--data-dir", data)
    cli("alias", "default", new["name"], "--data-dir", data)
    assert cli("alias", "--data-dir", data).stdout == f"default\t{new['name']}\n"
    # Re-running the re-index with the same model changes nothing.
    again = cli("index", folder, "--model", "hashing:32", "--reindex", "--data-dir", data, "--json")
    assert "re-indexing" not in again.stderr and summary(again)["unchanged"] == 3


def _readme_folders(tmp_path: Path) -> tuple[Path, Path]:
    zstd, openssl = tmp_path / "zstd", tmp_path / "openssl"
    for folder, text in ((zstd, "Zstandard compresses data fast."), (openssl, "TLS and certs.")):
        folder.mkdir()
        (folder / "README.md").write_text(f"# README\n\n{text}")
    return zstd, openssl


def _sources(data: Path) -> list[str]:
    args = ["search", "the", "-k", "50", "--json", "--data-dir", data]
    return sorted(Path(hit["source"]).parent.name for hit in json.loads(cli(*args).stdout))


def test_same_named_files_of_two_folders_are_two_documents(tmp_path: Path) -> None:
    zstd, openssl = _readme_folders(tmp_path)
    data = tmp_path / "data"
    assert summary(index(zstd, data))["new"] == 1
    # The second folder's README.md is a document of its own, not a change to the first's.
    assert summary(index(openssl, data)) == {"new": 1, "changed": 0, "unchanged": 0, "removed": 0}
    assert _sources(data) == ["openssl", "zstd"]
    assert summary(index(zstd, data)) == {"new": 0, "changed": 0, "unchanged": 1, "removed": 0}
    assert _sources(data) == ["openssl", "zstd"]


def test_one_run_over_two_folders_with_the_same_names_skips_nothing(tmp_path: Path) -> None:
    zstd, openssl = _readme_folders(tmp_path)
    data = tmp_path / "data"
    result = cli("index", zstd, openssl, "--model", "hashing", "--data-dir", data, "--json")
    assert summary(result)["new"] == 2
    assert "skipped" not in result.stderr
    assert _sources(data) == ["openssl", "zstd"]
    # Shown apart where their ids alone would be ambiguous.
    human = cli("search", "README", "--data-dir", data).stdout
    assert "zstd/README.md" in human and "openssl/README.md" in human
    # Also when only one of them is shown: the id is ambiguous in the collection.
    assert "zstd/README.md" in cli("search", "Zstandard", "-k", "1", "--data-dir", data).stdout


def test_a_collection_with_the_earlier_point_ids_is_upgraded_once(tmp_path: Path) -> None:
    import uuid

    zstd, openssl = _readme_folders(tmp_path)
    data = tmp_path / "data"
    index(zstd, data)
    # Rewrite the collection as earlier versions made it: ids from the document id alone.
    client = connect(data_dir=data)
    store = client.collection("default")
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "twinsearch/chunk")
    [page] = list(store.points())
    old = [
        Point(str(uuid.uuid5(namespace, f"{p.payload['doc_id']}\x00{p.payload['chunk']}")), *rest)
        for p in page
        for rest in [(p.vector, p.payload, p.sparse)]
    ]
    store.delete_points([p.id for p in page])
    store.upsert(old)
    meta = store.metadata()
    del meta["ids"]
    (store.folder / "collection.json").write_text(json.dumps(meta))
    client.close()

    result = index(openssl, data)
    assert "upgrading" in result.stderr
    assert summary(result) == {"new": 1, "changed": 0, "unchanged": 0, "removed": 0}
    assert summary(index(zstd, data))["unchanged"] == 1
    client = connect(data_dir=data)
    store = client.collection("default")
    assert store.count() == 2 and store.metadata()["ids"] == 2
    assert {pid for pid, _ in store.scroll(["doc_id"])} == {
        point_id(str(folder.resolve()), "README.md", 0) for folder in (zstd, openssl)
    }
    client.close()
    assert "upgrading" not in index(openssl, data).stderr


def test_a_touched_file_gets_its_new_time_without_being_embedded_again(
    folder: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    index(folder, data)
    assert ids(data, "the", 50, "modified<2020-01-01") == []
    old = time.mktime((2019, 5, 1, 12, 0, 0, 0, 0, -1))
    for path in folder.iterdir():
        os.utime(path, (old, old))
    result = index(folder, data)
    assert summary(result) == {"new": 0, "changed": 0, "unchanged": 4, "removed": 0}
    assert "0 documents" in result.stderr  # nothing embedded
    assert ids(data, "the", 50, "modified<2020-01-01") == sorted(p.name for p in folder.iterdir())


def test_indexing_nothing_fails_and_creates_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "cols.csv").write_text("id,body\n1,first\n2,second\n")
    (tmp_path / "obj.json").write_text('{"results": [{"text": "nested"}]}')
    result = cli(
        "index",
        tmp_path / "cols.csv",
        tmp_path / "obj.json",
        "--model",
        "hashing",
        "--data-dir",
        data,
        code=1,
    )
    assert 'no "text" column' in result.stderr  # the reasons come first
    assert "error: nothing to index" in result.stderr
    assert "no collection was created" in result.stderr
    assert connect(data_dir=data).collections() == []
    # Into an existing collection: an error too, and what it holds stays.
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\nKept.")
    index(tmp_path / "docs", data)
    result = cli("index", tmp_path / "cols.csv", "--model", "hashing", "--data-dir", data, code=1)
    assert "the collection is unchanged" in result.stderr
    assert ids(data) == ["a.md"]


def test_chunk_settings_are_checked_the_same_with_and_without_dry_run(
    folder: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    for dry in ((), ("--dry-run",)):
        bad = cli(
            "index",
            folder,
            "--model",
            "hashing",
            "--data-dir",
            data,
            "--chunk-size",
            "16",
            "--chunk-overlap",
            "32",
            *dry,
            code=1,
        )
        assert "error: --chunk-overlap 32 must be between 0 and half the chunk size" in bad.stderr
    # More than the model's window is refused, not cut (the hashing model's window is 64).
    big = cli(
        "index", folder, "--model", "hashing", "--data-dir", data, "--chunk-size", "100000", code=1
    )
    assert "--chunk-size 100000 is more than the model's window of 64 tokens" in big.stderr
    assert connect(data_dir=data).collections() == []
    index(folder, data, "--chunk-size", "32", "--chunk-overlap", "8")
    # A dry run refuses what the real run would: other chunk settings than the collection's.
    for dry in (("--dry-run",), ()):
        other = cli("index", folder, "--model", "hashing", "--data-dir", data, *dry, code=1)
        assert "was chunked with" in other.stderr


def test_a_dry_run_lists_changes_and_counts_the_unchanged(folder: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    index(folder, data)
    (folder / "new.md").write_text("# New\n\nA new one.")
    result = cli("index", folder, "--data-dir", data, "--dry-run")
    assert result.stdout == "new\tnew.md\n"
    assert "1 new, 0 changed, 4 unchanged, 0 removed (--all lists the unchanged)" in result.stderr
    everything = cli("index", folder, "--data-dir", data, "--dry-run", "--all").stdout
    assert sorted(everything.splitlines())[:2] == ["new\tnew.md", "unchanged\tbees.txt"]


def test_one_document_is_counted_in_the_singular(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\nOne.")
    (tmp_path / "docs" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    result = index(tmp_path / "docs", tmp_path / "data")
    assert "indexed 1 document (1 chunk) into" in result.stderr
    said = json.loads(result.stdout)
    assert (said["collection"], said["documents"], said["chunks"]) == ("default", 1, 1)
    assert said["left_out"] == {".png": 1} and said["skipped"] == []


def test_update_indexes_every_remembered_root_with_its_own_options(tmp_path: Path) -> None:
    data = tmp_path / "data"
    notes, src = tmp_path / "notes", tmp_path / "src"
    notes.mkdir()
    src.mkdir()
    (notes / "a.md").write_text("# A\n\nFirst note.")
    (src / "main.c").write_text("int main(void) { return 0; }")
    (src / "README").write_text("A small program.")
    index(notes, data)
    index(src, data, "--include", "*.c")  # only the C file, as asked
    (notes / "a.md").write_text("# A\n\nFirst note, edited.")
    (notes / "b.md").write_text("# B\n\nA new note.")
    (src / "main.c").unlink()
    (src / "util.c").write_text("int add(int a, int b) { return a + b; }")
    result = cli("update", "--data-dir", data, "--json")
    runs, rest = [], result.stdout.strip()
    while rest:  # one JSON object per group of roots
        run, end = json.JSONDecoder().raw_decode(rest)
        runs.append(run)
        rest = rest[end:].strip()
    assert [run["changes"] for run in runs] == [
        {"new": 1, "changed": 1, "unchanged": 0, "removed": 0},  # notes, as indexed
        {"new": 1, "changed": 0, "unchanged": 0, "removed": 1},  # src, still *.c only
    ]
    assert ids(data) == ["a.md", "b.md", "util.c"]
    # Nothing changed since: nothing to do.
    again = cli("update", "--data-dir", data).stderr
    assert again.count("0 new, 0 changed") == 2


def test_update_of_a_collection_that_remembers_no_roots_says_what_to_do(tmp_path: Path) -> None:
    cli("update", "--data-dir", tmp_path / "data", code=1)  # no collection: the usual error
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\nText.")
    index(tmp_path / "docs", tmp_path / "data")
    client = connect(data_dir=tmp_path / "data")
    store = client.collection("default")
    meta = store.metadata()
    del meta["sources"]
    (store.folder / "collection.json").write_text(json.dumps(meta))
    client.close()
    said = cli("update", "--data-dir", tmp_path / "data", code=1).stderr
    assert "records no folders or files" in said and "twinsearch index PATH" in said
