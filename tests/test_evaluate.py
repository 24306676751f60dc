from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twinsearch.cli.app import app
from twinsearch.encoders import HashingEncoder
from twinsearch.errors import SourceError
from twinsearch.evaluate import load_dataset, score
from twinsearch.indexer.chunking import ChunkSettings
from twinsearch.indexer.pipeline import index_once
from twinsearch.nouns import Hit
from twinsearch.stores import connect

TOPICS = {
    "d1": ("Tides", "the moon pulls the ocean and makes tides rise and fall"),
    "d2": ("Bread", "flour water salt and a sourdough starter make bread rise"),
    "d3": ("Bees", "honeybees dance to tell the hive where flowers are"),
    "d4": ("Volcano", "magma erupts from a volcano as lava and ash"),
    "d5": ("Chess", "the queen's gambit is a chess opening with a pawn sacrifice"),
    "d6": ("Coffee", "espresso forces hot water through finely ground coffee"),
}
QUERIES = {
    "q1": "why do tides rise",
    "q2": "sourdough bread flour",
    "q3": "bees dance flowers",
    "q4": "lava ash eruption",
    "q5": "chess opening pawn",
}
QRELS = [("q1", "d1", 1), ("q2", "d2", 1), ("q3", "d3", 1), ("q4", "d4", 2), ("q5", "d5", 1)]


def make_dataset(folder: Path, *, gz: bool = False) -> Path:
    (folder / "qrels").mkdir(parents=True)
    corpus = "".join(
        json.dumps({"_id": d, "title": t, "text": x}) + "\n" for d, (t, x) in TOPICS.items()
    )
    if gz:
        with gzip.open(folder / "corpus.jsonl.gz", "wt") as fh:
            fh.write(corpus)
    else:
        (folder / "corpus.jsonl").write_text(corpus)
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items())
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in QRELS)
    )
    return folder


def _hits(*doc_ids: str, score: float = 1.0) -> list[Hit]:
    return [Hit(i + 1, d, score, "", "", "", 0) for i, d in enumerate(doc_ids)]


def _ids(path: Path) -> set[str]:
    return set(TOPICS)


def test_metrics_match_values_worked_by_hand() -> None:
    qrels = {"q1": {"a": 1, "b": 1}, "q2": {"c": 1}}
    run = {"q1": _hits("a", "x", "b"), "q2": _hits("y", "z")}
    metrics = score(run, qrels)
    # q1: DCG = 1/log2(2) + 1/log2(4) = 1.5; ideal = 1 + 1/log2(3); q2 finds nothing.
    assert metrics["ndcg@10"] == pytest.approx((1.5 / (1 + 1 / 1.5849625)) / 2, abs=1e-4)
    assert metrics["mrr@10"] == pytest.approx(0.5)
    assert metrics["recall@100"] == pytest.approx(0.5)
    assert metrics["map@100"] == pytest.approx((1 + 2 / 3) / 2 / 2)


def test_a_query_without_results_counts_as_zero() -> None:
    metrics = score({"q1": _hits("a")}, {"q1": {"a": 1}, "q2": {"b": 1}})
    assert metrics["ndcg@10"] == pytest.approx(0.5)


def test_tied_scores_are_measured_in_the_order_returned() -> None:
    # trec_eval would reorder equal scores by document id; the ranks we return must win.
    qrels = {"q": {"a": 1}}
    assert score({"q": _hits("z", "a", score=0.5)}, qrels)["mrr@10"] == pytest.approx(0.5)
    assert score({"q": _hits("a", "z", score=0.5)}, qrels)["mrr@10"] == pytest.approx(1.0)


def test_dataset_problems_are_counted_or_refused(tmp_path: Path) -> None:
    folder = make_dataset(tmp_path / "ds")
    with (folder / "queries.jsonl").open("a") as fh:
        fh.write(json.dumps({"_id": "q6", "text": "  "}) + "\n")
    with (folder / "qrels" / "test.tsv").open("a") as fh:
        fh.write("q6\td1\t1\nq7\td1\t1\nq1\tnot-a-doc\t1\n")
    data = load_dataset(folder, "test", _ids)
    assert sorted(data.queries) == ["q1", "q2", "q3", "q4", "q5"]
    assert data.qrels["q1"] == {"d1": 1, "not-a-doc": 1}
    assert [w.split(" ", 2)[:2] for w in data.warnings] == [["1", "queries"]] * 2 + [
        ["1", "documents"]
    ]


def test_broken_files_name_the_line(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"missing queries.jsonl\[.gz\], qrels/test.tsv"):
        (tmp_path / "corpus.jsonl").write_text("")
        load_dataset(tmp_path, "test", _ids)
    folder = make_dataset(tmp_path / "ds")
    with pytest.raises(SourceError, match="missing qrels/dev.tsv"):
        load_dataset(folder, "dev", _ids)
    with (folder / "queries.jsonl").open("a") as fh:
        fh.write("{oops\n")
    with pytest.raises(SourceError, match=r"queries.jsonl:6: not JSON"):
        load_dataset(folder, "test", _ids)
    folder = make_dataset(tmp_path / "ds2")
    with (folder / "qrels" / "test.tsv").open("a") as fh:
        fh.write("q1\td1\n")
    with pytest.raises(SourceError, match=r"test.tsv:7: expected 'query-id"):
        load_dataset(folder, "test", _ids)


def test_index_once_reuses_only_a_complete_build_of_the_same_corpus(tmp_path: Path) -> None:
    folder = make_dataset(tmp_path / "ds")
    client = connect(data_dir=tmp_path / "data")
    encoder = HashingEncoder(64)
    chunking = ChunkSettings(64, 8)
    corpus = folder / "corpus.jsonl"
    store, report = index_once(client, "ev", encoder, chunking, corpus)
    assert report is not None and report.documents == 6
    assert store.metadata()["complete"] is True
    assert index_once(client, "ev", encoder, chunking, corpus)[1] is None
    store.update_metadata({"complete": False})  # as a killed build leaves it
    assert index_once(client, "ev", encoder, chunking, corpus)[1] is not None
    with corpus.open("a") as fh:
        fh.write(json.dumps({"_id": "d7", "title": "New", "text": "a new document"}) + "\n")
    store, report = index_once(client, "ev", encoder, chunking, corpus)
    assert report is not None and store.count() == 7
    client.close()


def test_eval_cli_end_to_end(tmp_path: Path) -> None:
    folder = make_dataset(tmp_path / "ds", gz=True)
    runner = CliRunner()
    args = ["eval", str(folder), "--model", "hashing", "--data-dir", str(tmp_path / "d")]
    first = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
    assert first.exit_code == 0, first.stderr
    assert "indexed 6 documents" in first.stderr
    result = json.loads(first.stdout)
    assert (
        result["queries"] == 5 and result["mode"] == "hybrid" and result["model"] == "hashing:256"
    )
    assert result["ndcg@10"] == pytest.approx(1.0)  # each query shares words with its document
    run_file = tmp_path / "run.trec"
    for mode in ["bm25", "dense", "hybrid"]:
        again = runner.invoke(app, [*args, "--json", "--mode", mode, "--run", str(run_file)])
        assert again.exit_code == 0, again.stderr
        assert "indexed" not in again.stderr  # the collection is reused
        assert json.loads(again.stdout)["ndcg@10"] == pytest.approx(1.0)
    assert json.loads(again.stdout) | {"seconds": 0, "query_seconds": 0} == result | {
        "seconds": 0,
        "query_seconds": 0,
    }
    lines = run_file.read_text().splitlines()
    assert lines[0].split()[:4] == ["q1", "Q0", "d1", "1"] and lines[0].endswith(
        "twinsearch-hybrid"
    )
    assert len(lines) == 5 * 6
    human = runner.invoke(app, args)
    assert "  nDCG@10     1.0000\n" in human.stdout and "5 queries" in human.stdout


def test_eval_of_a_folder_that_is_not_a_dataset(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", str(tmp_path), "--model", "hashing"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "is not a BEIR dataset" in result.stderr
