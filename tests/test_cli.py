"""The CLI end to end: the real model, the real embedded store, real files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twinsearch.cli.app import app

from .conftest import EXAMPLES

pytestmark = pytest.mark.slow
runner = CliRunner()


def run(*args: str | Path, code: int = 0):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    return lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped examples indexed once with the bundled model."""
    data_dir = tmp_path_factory.mktemp("data")
    result = run(
        "index", EXAMPLES / "corpus", EXAMPLES / "encyclopedia.jsonl", "--data-dir", data_dir
    )
    assert result.stdout == ""
    assert "indexed 33 documents" in result.stderr and "into 'default'" in result.stderr
    return data_dir


def chunks(data: Path, collection: str = "default") -> int:
    listing = json.loads(run("info", "--json", "--data-dir", data).stdout)
    return {c["name"]: c["chunks"] for c in listing["collections"]}[collection]


@pytest.mark.parametrize(
    "query,expected",
    [
        ("how do plants turn sunlight into sugar", "science/photosynthesis.md"),
        ("when did astronauts first walk on the moon", "history/moon-landing.txt"),
        ("my potted plant has yellow leaves and wet soil", "notes/houseplants.md"),
        ("bread that rises without bought yeast", "cooking/sourdough.md"),
        ("why is the night sky glowing green near the arctic", "wiki-aurora"),
        ("connection setup SYN ACK", "computing/tcp-handshake.md"),
    ],
)
def test_search_ranks_the_obviously_relevant_document_first(
    data: Path, query: str, expected: str
) -> None:
    hits = json.loads(run("search", query, "--json", "--data-dir", data).stdout)
    assert hits[0]["doc_id"] == expected


def test_json_output_shape(data: Path) -> None:
    result = run("search", "volcanic eruptions", "-k", "3", "--json", "--data-dir", data)
    hits = json.loads(result.stdout)  # stdout holds the JSON and nothing else
    assert len(hits) == 3
    for rank, hit in enumerate(hits, start=1):
        assert {"doc_id", "score", "title", "snippet", "source"} <= set(hit)
        assert hit["rank"] == rank and isinstance(hit["score"], float)
    assert hits[0]["doc_id"] == "science/volcanoes.txt"
    assert hits[0]["title"] == "Volcanoes"
    assert hits[0]["source"] == str((EXAMPLES / "corpus/science/volcanoes.txt").resolve())
    assert "Mount" in hits[0]["snippet"]
    assert len({h["doc_id"] for h in hits}) == 3


def test_human_output_lists_rank_score_id_title_and_snippet(data: Path) -> None:
    result = run("search", "rule of 72 doubling time", "-k", "2", "--data-dir", data)
    first = result.stdout.splitlines()[0]
    assert first.split()[:1] == ["1."] and "notes/compound-interest.md" in first
    assert "Compound interest" in first
    assert "rule of 72" in result.stdout


def test_long_document_is_chunked_and_the_matching_chunk_is_the_snippet(data: Path) -> None:
    hits = json.loads(
        run("search", "spider mites mealybugs fungus gnats", "--json", "--data-dir", data).stdout
    )
    assert hits[0]["doc_id"] == "notes/houseplants.md"
    assert hits[0]["chunk"] > 0 and "Mealybugs" in hits[0]["snippet"]


def test_reindexing_does_not_duplicate(data: Path) -> None:
    before = chunks(data)
    run("index", EXAMPLES / "corpus", EXAMPLES / "encyclopedia.jsonl", "--data-dir", data)
    assert chunks(data) == before >= 33


def test_info_names_the_location_model_and_fingerprint(data: Path) -> None:
    text = run("info", "--data-dir", data).stdout
    assert str(data) in text and "default:" in text and "all-MiniLM-L6-v2" in text
    listing = json.loads(run("info", "--json", "--data-dir", data).stdout)
    [c] = listing["collections"]
    assert c["dim"] == 384 and len(c["fingerprint"]) == 32


def test_missing_path_and_empty_folder(data: Path, tmp_path: Path) -> None:
    before = chunks(data)
    line = one_error_line(run("index", tmp_path / "nope", "--data-dir", data, code=1))
    assert "no such file or folder" in line
    (tmp_path / "empty").mkdir()
    line = one_error_line(run("index", tmp_path / "empty", "--data-dir", data, code=1))
    assert "no .txt, .md, .markdown, .rst, .html, .htm, .pdf, gzipped text or text files" in line
    assert chunks(data) == before


def test_binary_file_is_skipped_with_a_warning_and_the_run_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "ok.md").write_text("# Tea\n\nGreen tea is steamed or pan-fired.")
    (folder / "photo.md").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    result = run("index", folder, "--data-dir", tmp_path / "d")
    assert f"warning: skipped {folder / 'photo.md'}: binary file" in result.stderr
    assert "indexed 1 document (" in result.stderr and "skipped 1" in result.stderr


def test_unknown_collection(data: Path) -> None:
    line = one_error_line(run("search", "x", "-c", "nope", "--data-dir", data, code=1))
    assert "no collection 'nope'" in line and "twinsearch index" in line


def test_model_that_cannot_be_loaded(data: Path, tmp_path: Path) -> None:
    (tmp_path / "not-a-model").mkdir()
    for model in [str(tmp_path / "not-a-model"), "someone/no-such-model-anywhere"]:
        line = one_error_line(
            run(
                "index",
                EXAMPLES / "corpus",
                "-c",
                "other",
                "--model",
                model,
                "--data-dir",
                data,
                code=1,
            )
        )
        assert "cannot load model" in line and "--model" in line
    assert "other" not in json.dumps(json.loads(run("info", "--json", "--data-dir", data).stdout))


def test_a_different_encoder_is_refused(data: Path) -> None:
    before = chunks(data)
    line = one_error_line(run("search", "tides", "--model", "hashing", "--data-dir", data, code=1))
    assert (
        "was indexed with model 'all-MiniLM-L6-v2'" in line and "--model all-MiniLM-L6-v2" in line
    )
    line = one_error_line(
        run("index", EXAMPLES / "corpus", "--model", "hashing", "--data-dir", data, code=1)
    )
    assert "--reindex" in line
    assert chunks(data) == before


@contextmanager
def held(data: Path) -> Iterator[None]:
    """Another process holding the embedded collection open."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys
            from twinsearch.stores import connect
            store = connect(data_dir={str(data)!r}).collection("default")
            store.open()
            print("ready", flush=True)
            sys.stdin.read()
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    try:
        yield
    finally:
        holder.communicate("", timeout=30)


@pytest.fixture
def locked(data: Path) -> Iterator[None]:
    with held(data):
        yield


def test_a_store_locked_by_another_process(data: Path, locked: None) -> None:
    line = one_error_line(run("search", "tides", "--data-dir", data, code=1))
    assert "in use by another twinsearch process" in line
    line = one_error_line(run("index", EXAMPLES / "corpus", "--data-dir", data, code=1))
    assert "in use by another twinsearch process" in line


def test_a_held_collection_is_said_before_any_model_loads(
    data: Path, locked: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from twinsearch import session

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model loaded before the lock was checked")

    monkeypatch.setattr(session, "load_encoder", no_model)
    result = runner.invoke(app, ["index", str(EXAMPLES / "corpus"), "--data-dir", str(data)])
    assert result.exit_code == 1
    assert "in use by another twinsearch process" in result.stderr


def test_nothing_is_lost_after_the_errors(data: Path, tmp_path: Path) -> None:
    """Commands that fail on a collection (a bad path, a model that does not load, another
    encoder, a store held by another process) leave it as it was."""
    before = chunks(data)
    (tmp_path / "not-a-model").mkdir()
    for args in [
        ["index", tmp_path / "nope"],
        ["index", EXAMPLES / "corpus", "-c", "other", "--model", tmp_path / "not-a-model"],
        ["index", EXAMPLES / "corpus", "--model", "hashing"],
        ["search", "tides", "--model", "hashing"],
    ]:
        run(*args, "--data-dir", data, code=1)
    with held(data):
        run("index", EXAMPLES / "corpus", "--data-dir", data, code=1)
    hits = json.loads(run("search", "tides and the moon", "--json", "--data-dir", data).stdout)
    assert hits[0]["doc_id"] == "science/ocean-tides.txt"
    listing = json.loads(run("info", "--json", "--data-dir", data).stdout)
    assert [(c["name"], c["chunks"]) for c in listing["collections"]] == [("default", before)]


def test_empty_query_is_a_usage_error(data: Path) -> None:
    result = run("search", "  ", "--data-dir", data, code=2)
    assert "empty" in result.stderr


def test_drop(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("hello there")
    run("index", folder, "--model", "hashing", "-c", "scratch", "--data-dir", tmp_path / "d")
    result = run("drop", "scratch", "--yes", "--data-dir", tmp_path / "d")
    assert "dropped 'scratch' (1 chunks)" in result.stderr
    assert (
        json.loads(run("info", "--json", "--data-dir", tmp_path / "d").stdout)["collections"] == []
    )


def test_help_and_startup_import_no_heavy_library() -> None:
    code = textwrap.dedent("""
        import sys
        from typer.testing import CliRunner
        from twinsearch.cli.app import app
        for args in (["--help"], ["index", "--help"], ["search", "--help"], ["info", "--help"]):
            assert CliRunner().invoke(app, args).exit_code == 0
        heavy = {"torch", "transformers", "sentence_transformers", "qdrant_client"}
        print(sorted(heavy & set(sys.modules)))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_console_script_is_installed() -> None:
    exe = shutil.which("twinsearch", path=str(Path(sys.executable).parent))
    assert exe, "pip install -e . should install the twinsearch command"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("twinsearch ")


@pytest.mark.parametrize(
    "mode,query,expected",
    [
        ("bm25", "Gutenberg Mainz movable type", "history/printing-press.txt"),
        ("bm25", "RuBisCO", "science/photosynthesis.md"),
        ("hybrid", "rule of 72 doubling", "notes/compound-interest.md"),
        ("hybrid", "why do corals turn white", "science/coral-reefs.md"),
    ],
)
def test_keyword_and_hybrid_modes(data: Path, mode: str, query: str, expected: str) -> None:
    hits = json.loads(run("search", query, "--mode", mode, "--json", "--data-dir", data).stdout)
    assert hits[0]["doc_id"] == expected


def test_bm25_finds_only_documents_with_the_words(data: Path) -> None:
    hits = json.loads(
        run("search", "zooxanthellae", "--mode", "bm25", "--json", "--data-dir", data).stdout
    )
    assert [h["doc_id"] for h in hits] == ["science/coral-reefs.md"]


def test_indexing_keeps_an_onnx_query_encoder_that_agrees_with_torch(
    data: Path, real_encoder
) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from twinsearch.encoders import onnx

    exported = onnx.load(data / "models", real_encoder.fingerprint)
    texts = ["how do tides work", "Gutenberg printing press 1450", "x", "long " * 300]
    cosines = np.sum(exported.encode_queries(texts) * real_encoder.encode_queries(texts), axis=1)
    assert cosines.min() >= 0.999
    for query in ["rule of 72", "why do corals turn white", "volcanic ash and aircraft"]:
        fast = json.loads(run("search", query, "--json", "--data-dir", data).stdout)
        torch = run("search", query, "--json", "--model", "all-MiniLM-L6-v2", "--data-dir", data)
        slow = json.loads(torch.stdout)
        assert [h["doc_id"] for h in fast] == [h["doc_id"] for h in slow]
        assert [h["score"] for h in fast] == pytest.approx([h["score"] for h in slow], abs=1e-3)


def test_search_on_the_onnx_path_imports_no_torch(data: Path) -> None:
    code = textwrap.dedent(f"""
        import sys
        from twinsearch.cli.app import app
        app(["search", "tides", "--json", "--data-dir", {str(data)!r}], standalone_mode=False)
        print(sorted({{"torch", "sentence_transformers", "qdrant_client"}} & set(sys.modules)))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    *printed, modules = out.stdout.strip().splitlines()
    assert modules == "[]"
    assert "note:" not in out.stderr
    # A fresh process embeds its query in a forked child while it opens the collection;
    # the hits are those of the same search made in-process.
    forked = json.loads("\n".join(printed))
    in_process = json.loads(run("search", "tides", "--json", "--data-dir", data).stdout)
    assert [h["doc_id"] for h in forked] == [h["doc_id"] for h in in_process]
    assert [h["score"] for h in forked] == pytest.approx([h["score"] for h in in_process])


def test_a_broken_export_found_by_the_forked_child_falls_back_to_torch(
    data: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    [export] = [p for p in (copy / "models").iterdir() if p.is_dir()]
    (export / "query.onnx").write_bytes(b"not a model")
    command = [sys.executable, "-m", "twinsearch.cli", "search", "tides and the moon", "--json"]
    out = subprocess.run(
        [*command, "--data-dir", str(copy)], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout)[0]["doc_id"] == "science/ocean-tides.txt"
    assert "broken ONNX export" in out.stderr and "using torch" in out.stderr


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_missing_or_broken_export_falls_back_to_torch(
    data: Path, tmp_path: Path, damage: str
) -> None:
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    [export] = [p for p in (copy / "models").iterdir() if p.is_dir()]
    if damage == "missing":
        shutil.rmtree(export)
    else:
        (export / "query.onnx").write_bytes(b"not a model")
    result = run("search", "tides and the moon", "--json", "--data-dir", copy)
    assert json.loads(result.stdout)[0]["doc_id"] == "science/ocean-tides.txt"
    expected = "no ONNX export" if damage == "missing" else "broken ONNX export"
    assert expected in result.stderr and "using torch" in result.stderr


def test_the_forked_child_embeds_the_first_query(data: Path) -> None:
    code = textwrap.dedent(f"""
        import os
        from pathlib import Path
        import numpy as np
        from twinsearch.encoders import Encoder, onnx

        models = Path({str(data / "models")!r})
        [fingerprint] = [p.name for p in models.iterdir() if p.is_dir()]
        def fallback():
            raise AssertionError("the vector must come from the child")
        forked = onnx.ForkedQuery(models, fingerprint, "tides", fallback=fallback)
        assert forked._pid not in (None, os.getpid())
        vector = forked.encode_queries(["tides"])
        here = onnx.load(models, fingerprint)
        assert np.allclose(vector, here.encode_queries(["tides"]), atol=1e-6), vector
        assert isinstance(here, Encoder)  # not asked of forked: its tokenizer needs the fallback
        forked.close()
        here.close()
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr
