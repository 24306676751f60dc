"""Retrieval quality on a BEIR-layout dataset, measured through the real search path.

Metrics come from ir-measures, which runs trec_eval itself (through pytrec_eval): the same
code that produced the published BEIR numbers, so ours compare with theirs directly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from twinsearch import beir
from twinsearch.beir import json_lines as json_lines
from twinsearch.beir import read_qrels as read_qrels
from twinsearch.errors import SourceError
from twinsearch.nouns import MAX_K, Hit
from twinsearch.search import Mode, Searcher

METRICS = {"ndcg@10": "nDCG@10", "mrr@10": "RR@10", "recall@100": "R@100", "map@100": "AP@100"}
DEPTH = 100
"""Documents ranked per query: what Recall@100 and MAP@100 need."""


@dataclass
class Dataset:
    folder: Path
    split: str
    corpus: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    warnings: list[str] = field(default_factory=list)


def load_dataset(folder: Path, split: str, corpus_ids: Callable[[Path], set[str]]) -> Dataset:
    """Read queries and qrels and check them against each other and against the corpus.

    Queries the qrels name but the queries file lacks, and queries with empty text, are
    skipped and counted; qrels naming documents the corpus lacks are kept (they count as
    relevant but unfindable, as in trec_eval) and counted.
    """
    folder = Path(folder)
    parts = beir.files(folder, split)
    corpus, queries_path, qrels_path = parts.corpus, parts.queries, parts.qrels
    missing = parts.missing()
    if missing:
        raise SourceError(
            f"{folder} is not a BEIR dataset: missing {', '.join(missing)}; it needs "
            "corpus.jsonl[.gz], queries.jsonl[.gz] and qrels/<split>.tsv"
        )
    assert corpus is not None and queries_path is not None
    qrels = read_qrels(qrels_path)
    if not qrels:
        raise SourceError(f"{qrels_path} has no judgements")
    all_queries = beir.read_queries(queries_path)
    warnings = []
    unknown = sorted(q for q in qrels if q not in all_queries)
    empty = sorted(q for q in qrels if q in all_queries and not all_queries[q].strip())
    if unknown:
        warnings.append(
            f"{len(unknown)} queries in qrels/{split}.tsv are not in {queries_path.name}, "
            f"skipped (first: {unknown[0]!r})"
        )
    if empty:
        warnings.append(f"{len(empty)} queries have empty text, skipped (first: {empty[0]!r})")
    queries = {q: all_queries[q] for q in qrels if q not in unknown and q not in empty}
    if not queries:
        raise SourceError(f"no query of qrels/{split}.tsv has text in {queries_path.name}")
    known = corpus_ids(corpus)
    absent = {d for q in queries for d in qrels[q] if d not in known}
    if absent:
        warnings.append(
            f"{len(absent)} documents judged in qrels/{split}.tsv are not in the corpus "
            f"(first: {sorted(absent)[0]!r}); they count as relevant but cannot be found"
        )
    return Dataset(folder, split, corpus, queries, {q: qrels[q] for q in queries}, warnings)


def run_queries(
    searcher: Searcher,
    queries: Mapping[str, str],
    mode: Mode | None = None,
    k: int = DEPTH,
    batch_size: int = 64,
    on_progress: Callable[[int], None] = lambda done: None,
    keep_identical: bool = False,
) -> dict[str, list[Hit]]:
    """Each query's ranking, ``k`` deep where the collection allows.

    A hit whose id is the query's own id is dropped (and one more document retrieved in its
    place), as BEIR's evaluator does by default: in sets whose queries are documents of the
    corpus (ArguAna, Quora) the query's own document would otherwise count as a miss.
    ``keep_identical`` keeps it.
    """
    depth = k if keep_identical else min(k + 1, MAX_K)
    ids = list(queries)
    run: dict[str, list[Hit]] = {}
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size]
        results = searcher.search_many([queries[q] for q in batch], depth, mode, readable=False)
        for qid, hits in zip(batch, results, strict=True):
            run[qid] = hits if keep_identical else _without_identical(qid, hits, k)
        on_progress(len(run))
    return run


def _without_identical(qid: str, hits: Sequence[Hit], k: int) -> list[Hit]:
    """The first ``k`` of ``hits`` other than document ``qid``, ranked again from 1."""
    kept = [hit for hit in hits if hit.doc_id != qid][:k]
    return [hit if hit.rank == i else replace(hit, rank=i) for i, hit in enumerate(kept, 1)]


def score(
    run: Mapping[str, Sequence[Hit]], qrels: Mapping[str, Mapping[str, int]]
) -> dict[str, float]:
    """Mean of each metric over the judged queries; a query with no results scores 0.

    trec_eval re-sorts a run by score and breaks ties its own way; scores here are derived
    from our ranks so the order measured is exactly the order returned.
    """
    import ir_measures

    measures = {name: ir_measures.parse_measure(spec) for name, spec in METRICS.items()}
    scored = [
        ir_measures.ScoredDoc(qid, hit.doc_id, float(len(hits) - i))
        for qid, hits in run.items()
        for i, hit in enumerate(hits)
    ]
    judged = [ir_measures.Qrel(q, d, rel) for q, docs in qrels.items() for d, rel in docs.items()]
    per_query = {name: {q: 0.0 for q in qrels} for name in measures}
    by_measure = {m: name for name, m in measures.items()}
    for metric in ir_measures.iter_calc(list(measures.values()), judged, scored):
        per_query[by_measure[metric.measure]][metric.query_id] = float(metric.value)
    return {name: sum(values.values()) / len(values) for name, values in per_query.items()}


def write_trec_run(run: Mapping[str, Sequence[Hit]], path: Path, tag: str) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for qid, hits in run.items():
            for hit in hits:
                fh.write(f"{qid} Q0 {hit.doc_id} {hit.rank} {hit.score:.6f} {tag}\n")


def collection_name(folder: Path, fingerprint: str, truncate: bool) -> str:
    """The collection `twinsearch eval` indexes dataset ``folder`` into, for one model
    (and one way of cutting documents): reused while both are the same."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", folder.resolve().name).strip("-.") or "dataset"
    return f"eval-{stem[:30]}-{fingerprint[:10]}" + ("-truncate" if truncate else "")
