"""Reading training data, splitting it, and calibrating a same/different threshold."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from twinsearch.errors import SourceError
from twinsearch.training.data import Labelled, Pair, holdout, limited, parse_fields, read
from twinsearch.training.verify import best_threshold, stored_threshold


def _jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_query_positive_jsonl_with_negatives_in_any_shape(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"query": "q1", "positive": "p1", "negative": "n1"},
            {"query": "q2", "positive": "p2", "negative": ["n2", "n3"], "negative_2": "n4"},
            {"query": "q3", "positive": "p3"},
        ],
    )
    data = read(path)
    assert data.kind == "pairs"
    assert data.pairs == [
        Pair("q1", "p1", ("n1",)),
        Pair("q2", "p2", ("n2", "n3", "n4")),
        Pair("q3", "p3", ()),
    ]
    assert data.corpus == ["p1", "n1", "p2", "n2", "n3", "n4", "p3"]


def test_anchor_positive_negative_triplets_from_tsv(tmp_path: Path) -> None:
    path = tmp_path / "triplets.tsv"
    path.write_text("anchor\tpositive\tnegative\na\tb\tc\nd\te\tf\n")
    assert read(path).pairs == [Pair("a", "b", ("c",)), Pair("d", "e", ("f",))]


def test_labelled_pairs_from_csv_and_json(tmp_path: Path) -> None:
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text('text1,text2,label\n"a, b",c,1\nd,e,0\nf,g,true\n')
    data = read(csv_path)
    assert data.kind == "labelled"
    assert data.labelled == [Labelled("a, b", "c", 1), Labelled("d", "e", 0), Labelled("f", "g", 1)]
    json_path = tmp_path / "pairs.json"
    json_path.write_text(json.dumps([{"text1": "x", "text2": "y", "label": 0}]))
    assert read(json_path).labelled == [Labelled("x", "y", 0)]


def test_field_names_are_configurable(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "qa.jsonl", [{"question": "why", "answer": "because"}])
    fields = parse_fields(["query=question", "positive=answer"])
    assert read(path, fields=fields).pairs == [Pair("why", "because")]
    with pytest.raises(SourceError, match="--field query=question"):
        read(path)
    with pytest.raises(SourceError, match="ROLE=NAME"):
        parse_fields(["question"])
    with pytest.raises(SourceError, match="ROLE one of"):
        parse_fields(["nonsense=question"])


def test_bad_records_name_their_line(tmp_path: Path) -> None:
    missing = _jsonl(tmp_path / "missing.jsonl", [{"query": "q", "positive": "p"}, {"query": "q2"}])
    with pytest.raises(SourceError, match=r"missing.jsonl:2: no \"positive\" field"):
        read(missing)
    label = tmp_path / "label.csv"
    label.write_text("text1,text2,label\na,b,1\nc,d,2\n")
    with pytest.raises(SourceError, match=r"label.csv:3: .*labels must be 0 .* or 1"):
        read(label)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"query": "q", "positive": "p"}\n{not json\n')
    with pytest.raises(SourceError, match="broken.jsonl:2: not JSON"):
        read(broken)
    with pytest.raises(SourceError, match="unknown training data format .parquet"):
        (tmp_path / "x.parquet").write_text("")
        read(tmp_path / "x.parquet")
    with pytest.raises(SourceError, match="does not exist"):
        read(tmp_path / "nowhere.jsonl")


def test_empty_texts_are_skipped_and_counted(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"query": "q", "positive": "p"},
            {"query": " ", "positive": "p"},
            {"query": "q", "positive": None},
        ],
    )
    data = read(path)
    assert len(data) == 1
    assert data.skipped == {"empty query or positive": 2}
    only_empty = _jsonl(tmp_path / "empty.jsonl", [{"query": "", "positive": "p"}])
    with pytest.raises(SourceError, match="no usable training example"):
        read(only_empty)


def _beir(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "d1", "title": "Tides", "text": "The moon pulls the sea."},
        {"_id": "d2", "title": "", "text": "Plants make sugar from light."},
        {"_id": "d3", "title": "Rust", "text": "Iron oxidises in water."},
    ]
    with gzip.open(folder / "corpus.jsonl.gz", "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in corpus)
    _jsonl(
        folder / "queries.jsonl",
        [{"_id": "q1", "text": "why tides"}, {"_id": "q2", "text": "photosynthesis"}],
    )
    (folder / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq2\td9\t1\nq9\td3\t1\nq1\td3\t0\n"
    )
    return folder


def test_beir_queries_are_joined_to_their_relevant_documents(tmp_path: Path) -> None:
    data = read(_beir(tmp_path / "beir"), split="train")
    assert data.pairs == [
        Pair("why tides", "Tides\nThe moon pulls the sea."),
        Pair("photosynthesis", "Plants make sugar from light."),
    ]
    assert data.skipped == {"document not in corpus": 1, "query not in queries file": 1}
    assert len(data.corpus) == 3  # every document can be mined or searched
    with pytest.raises(SourceError, match="qrels/dev.tsv"):
        read(tmp_path / "beir", split="dev")


def test_holdout_keeps_each_query_on_one_side_and_is_seeded(tmp_path: Path) -> None:
    records = [{"query": f"q{i}", "positive": f"p{i}-{j}"} for i in range(40) for j in range(2)]
    data = read(_jsonl(tmp_path / "pairs.jsonl", records))
    train, val = holdout(data, 0.1, seed=3)
    assert val is not None and len(val) == 8 and len(train) == 72
    assert not {p.query for p in train.pairs} & {p.query for p in val.pairs}
    assert holdout(data, 0.1, seed=3)[1] == val
    assert holdout(data, 0.1, seed=4)[1] != val
    small = read(_jsonl(tmp_path / "small.jsonl", records[:10]))
    assert holdout(small, 0.1)[1] is None


def test_limited_takes_one_query_at_a_time_most_relevant_first(tmp_path: Path) -> None:
    folder = tmp_path / "graded"
    (folder / "qrels").mkdir(parents=True)
    docs = [{"_id": f"d{i}", "title": "", "text": f"document {i}"} for i in range(6)]
    _jsonl(folder / "corpus.jsonl", docs)
    _jsonl(folder / "queries.jsonl", [{"_id": f"q{i}", "text": f"query {i}"} for i in range(3)])
    (folder / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        "q0\td0\t1\nq0\td1\t2\nq0\td2\t1\nq1\td3\t1\nq1\td4\t2\nq2\td5\t1\n"
    )
    data = read(folder, split="train")
    assert len(data) == 6
    four = limited(data, 4, seed=1)
    # Every query once, each with its most relevant document, before any query twice.
    assert sorted((p.query, p.positive) for p in four.pairs[:3]) == [
        ("query 0", "document 1"),
        ("query 1", "document 4"),
        ("query 2", "document 5"),
    ]
    assert len(four) == 4 and four.pairs[3].query in ("query 0", "query 1")
    assert four.corpus == data.corpus  # the documents to search and mine stay
    assert limited(data, 4, seed=1) == four
    assert limited(data, 0) is data and limited(data, 6) is data


def test_threshold_maximises_accuracy_or_f1() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.3])
    labels = np.array([1, 1, 0, 1, 0, 0])
    accuracy, threshold = best_threshold(scores, labels, "accuracy")
    assert accuracy == pytest.approx(5 / 6)
    assert threshold == pytest.approx(0.75)  # 0.75 and 0.5 tie; the first best is kept
    f1, f1_threshold = best_threshold(scores, labels, "f1")
    assert f1 == pytest.approx(6 / 7)  # tp 3, fp 1, fn 0
    assert f1_threshold == pytest.approx(0.5)
    assert best_threshold(np.array([0.5, 0.5]), np.array([1, 0]))[0] == pytest.approx(0.5)


def test_stored_threshold_reads_the_training_record(tmp_path: Path) -> None:
    assert stored_threshold(tmp_path) is None
    (tmp_path / "twinsearch_training.json").write_text(json.dumps({"threshold": 0.61}))
    assert stored_threshold(tmp_path) == pytest.approx(0.61)


def test_mnrl_columns_give_every_pair_the_same_number_of_negatives(tmp_path: Path) -> None:
    from twinsearch.training.trainer import _columns

    path = _jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"query": "q1", "positive": "p1", "negative": ["n1", "n2"]},
            {"query": "q2", "positive": "p2"},
            {"query": "q3", "positive": "p3", "negative": "n3"},
        ],
    )
    columns = _columns(read(path), "mnrl")
    assert list(columns) == ["anchor", "positive", "negative_1", "negative_2"]
    assert columns["negative_1"][0] == "n1" and columns["negative_2"][0] == "n2"
    assert columns["negative_1"][2] == "n3"
    # Made up from the other documents, never the pair's own positive.
    assert columns["negative_1"][1] != "p2" and columns["negative_2"][1] != "p2"
    assert columns["negative_2"][2] != "p3"
    triplets = _columns(read(path), "triplet")
    assert triplets["anchor"] == ["q1", "q1", "q3"] and triplets["negative"] == ["n1", "n2", "n3"]
