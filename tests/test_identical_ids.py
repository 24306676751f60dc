"""Queries that are themselves documents of the corpus (ArguAna, Quora): the query's own
document is dropped from its ranking, as BEIR's evaluator does, unless --keep-identical."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from twinsearch.cli.app import app
from twinsearch.encoders import HashingEncoder
from twinsearch.evaluate import run_queries
from twinsearch.indexer.chunking import ChunkSettings
from twinsearch.indexer.pipeline import index_once
from twinsearch.search import Searcher
from twinsearch.stores import connect

ARGUMENTS = {
    "a1": "school uniforms make pupils equal and stop bullying over clothes",
    "a2": "school uniforms do not stop bullying as pupils mock other clothes",
    "b1": "nuclear power is clean energy with low carbon emissions",
    "b2": "nuclear power leaves waste for centuries despite low carbon emissions",
    "c1": "zoos protect endangered animals from extinction",
    "c2": "zoos keep endangered animals in cages far from extinction in the wild",
    "d1": "a tax on sugar drinks cuts obesity in children",
    "d2": "a sugar drinks tax punishes the poor and barely cuts obesity in children",
}
COUNTERS = {"a1": "a2", "b1": "b2", "c1": "c2", "d1": "d2"}
"""Each query (an argument of the corpus) and the counter-argument judged relevant to it."""


def make_dataset(folder: Path) -> Path:
    """A BEIR folder whose queries are documents of its corpus, with the same ids and text."""
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in ARGUMENTS.items())
    )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": ARGUMENTS[q]}) + "\n" for q in COUNTERS)
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in COUNTERS.items())
    )
    return folder


def _eval(folder: Path, tmp_path: Path, *extra: str) -> tuple[dict[str, Any], list[list[str]]]:
    """``twinsearch eval --json`` on ``folder``: its result and its run file's rows."""
    run_file = tmp_path / "run.trec"
    args = ["eval", str(folder), "--model", "hashing", "--data-dir", str(tmp_path / "d")]
    result = CliRunner().invoke(
        app, [*args, "--json", "--run", str(run_file), *extra], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout), [line.split() for line in run_file.read_text().splitlines()]


def test_eval_drops_the_query_s_own_document_by_default(tmp_path: Path) -> None:
    folder = make_dataset(tmp_path / "ds")
    dropped, rows = _eval(folder, tmp_path)
    assert not [row for row in rows if row[0] == row[2]]
    assert len(rows) == len(COUNTERS) * (len(ARGUMENTS) - 1)
    assert {row[0]: row[2] for row in rows if row[3] == "1"} == COUNTERS
    kept, rows = _eval(folder, tmp_path, "--keep-identical")
    assert kept["identical_ids"] == "kept"
    assert {row[0]: row[2] for row in rows if row[3] == "1"} == {q: q for q in COUNTERS}
    assert len(rows) == len(COUNTERS) * len(ARGUMENTS)
    assert dropped["ndcg@10"] == pytest.approx(1.0)
    assert kept["ndcg@10"] == pytest.approx(1 / math.log2(3), abs=1e-4)
    assert dropped["ndcg@10"] > kept["ndcg@10"]
    assert dropped["identical_ids"] == "dropped"


def test_the_ranking_stays_k_deep_after_the_drop(tmp_path: Path) -> None:
    folder = make_dataset(tmp_path / "ds")
    client = connect(data_dir=tmp_path / "data")
    encoder = HashingEncoder(256)
    store, _ = index_once(client, "ev", encoder, ChunkSettings(64, 8), folder / "corpus.jsonl")
    searcher = Searcher.for_store(store, encoder)
    queries = {q: ARGUMENTS[q] for q in COUNTERS}
    dropped = run_queries(searcher, queries, "hybrid", k=3)
    kept = run_queries(searcher, queries, "hybrid", k=3, keep_identical=True)
    for qid in COUNTERS:
        assert [hit.rank for hit in dropped[qid]] == [1, 2, 3]
        assert qid not in [hit.doc_id for hit in dropped[qid]]
        assert kept[qid][0].doc_id == qid and len(kept[qid]) == 3
        assert [hit.doc_id for hit in dropped[qid][:2]] == [hit.doc_id for hit in kept[qid][1:]]
    client.close()
