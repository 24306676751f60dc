"""`twinsearch eval DATASET_DIR`"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from twinsearch.cli.common import (
    DataDir,
    EncoderBatch,
    JsonOut,
    ModeOption,
    Precision,
    QdrantUrl,
    Runtime,
    SearchMode,
    Threads,
    err,
    errors_to_exit,
    index_progress,
    indexing_encoder,
    out,
    print_index_summary,
    print_skips,
    settings_from,
)
from twinsearch.session import open_client

if TYPE_CHECKING:
    from twinsearch.encoders import Encoder
    from twinsearch.evaluate import Dataset
    from twinsearch.indexer.chunking import ChunkSettings
    from twinsearch.nouns import Hit
    from twinsearch.settings import Settings

# Labelled as `twinsearch train` labels them.
METRICS = {
    "ndcg@10": "nDCG@10",
    "mrr@10": "MRR@10",
    "recall@100": "Recall@100",
    "map@100": "MAP@100",
}


DatasetPath = Annotated[
    Path,
    typer.Argument(
        metavar="DATASET",
        help="BEIR folder: corpus.jsonl[.gz], queries.jsonl[.gz], qrels/SPLIT.tsv",
    ),
]
Split = Annotated[str, typer.Option(help="Which qrels/SPLIT.tsv to judge by")]
EvalModel = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Model to evaluate: a sentence-transformers folder or id "
        "[env: TWINSEARCH_MODEL; default: the bundled all-MiniLM-L6-v2]",
        show_default=False,
    ),
]
Truncate = Annotated[
    bool,
    typer.Option(
        "--truncate",
        help="One vector per document, title and text joined and cut at the model's "
        "maximum length, as BEIR results are published (default: chunked, as indexed)",
    ),
]
RunFile = Annotated[
    Path | None, typer.Option("--run", help="Also write the ranking as a TREC run file")
]
KeepIdentical = Annotated[
    bool,
    typer.Option(
        "--keep-identical",
        help="Keep a hit whose id is the query's id. By default it is dropped, as BEIR does: "
        "where queries are documents of the corpus (ArguAna, Quora) the query's own document "
        "would otherwise count as a miss",
    ),
]


@errors_to_exit
def eval_(
    dataset: DatasetPath,
    split: Split = "test",
    model: EvalModel = None,
    mode: ModeOption = None,
    truncate: Truncate = False,
    run_file: RunFile = None,
    keep_identical: KeepIdentical = False,
    json_out: JsonOut = False,
    threads: Threads = None,
    runtime: Runtime = None,
    precision: Precision = None,
    batch_size: EncoderBatch = None,
    data_dir: DataDir = None,
    qdrant_url: QdrantUrl = None,
) -> None:
    """Measure retrieval quality on a BEIR-layout dataset through the real search path.

    The corpus is indexed once into a collection of its own (reused while the model and the
    corpus file are unchanged); every query of the split then runs as `twinsearch search`
    runs it. Reports nDCG@10, MRR@10, Recall@100 and MAP@100.

    A hit whose id is the query's id is dropped from its ranking (and from --run), as BEIR's
    evaluator does by default: where queries are documents of the corpus (ArguAna, Quora)
    the query's own document would otherwise count as a miss. --keep-identical keeps it.
    """
    from twinsearch.evaluate import collection_name, score, write_trec_run

    started = time.perf_counter()
    settings = settings_from(
        model=model,
        threads=threads,
        runtime=runtime,
        precision=precision,
        batch_size=batch_size,
        data_dir=data_dir,
        qdrant_url=qdrant_url,
    )
    data = _dataset(dataset, split)
    encoder, chunking = _encoder(settings, truncate)
    name = collection_name(dataset, encoder.fingerprint, truncate)
    run, query_seconds, used = _run(settings, name, encoder, chunking, data, mode, keep_identical)
    metrics = score(run, data.qrels)
    if run_file:
        write_trec_run(run, run_file, f"twinsearch-{used}")
    result = {
        **{k: round(v, 4) for k, v in metrics.items()},
        "queries": len(data.queries),
        "mode": used,
        "model": encoder.name,
        "split": split,
        "truncate": truncate,
        "identical_ids": "kept" if keep_identical else "dropped",
        "collection": name,
        "seconds": round(time.perf_counter() - started, 1),
        "query_seconds": round(query_seconds, 2),
    }
    if json_out:
        print(json.dumps(result, indent=2))
        return
    _print_result(dataset, result, metrics, query_seconds)


def _dataset(folder: Path, split: str) -> Dataset:
    """The dataset in ``folder`` judged by ``split``; what was skipped is warned of."""
    from twinsearch.evaluate import load_dataset
    from twinsearch.indexer.sources import Corpus

    data = load_dataset(folder, split, lambda path: {d.doc_id for d in Corpus([path])})
    for warning in data.warnings:
        err.print(f"warning: {warning}", markup=False)
    return data


def _encoder(settings: Settings, truncate: bool) -> tuple[Encoder, ChunkSettings]:
    """The encoder to evaluate (on the path the settings ask for, its query side exported),
    and how the corpus is cut for it."""
    from twinsearch.encoders import DEFAULT_MODEL
    from twinsearch.indexer.chunking import ChunkSettings

    encoder = indexing_encoder(settings, settings.model or DEFAULT_MODEL)
    return encoder, ChunkSettings(encoder.window, settings.chunk_overlap, truncate=truncate)


def _run(
    settings: Settings,
    name: str,
    encoder: Encoder,
    chunking: ChunkSettings,
    data: Dataset,
    mode: SearchMode | None,
    keep_identical: bool,
) -> tuple[dict[str, list[Hit]], float, str]:
    """Every query's ranking from collection ``name`` (the corpus indexed into it first, if
    it is not there yet; a hit with the query's own id dropped unless ``keep_identical``), the
    seconds the queries took, and the mode they ran in."""
    from twinsearch.evaluate import run_queries
    from twinsearch.indexer.update import write_batch
    from twinsearch.search import Searcher

    with open_client(settings) as client:
        store = _index(client, name, encoder, chunking, data.corpus, write_batch(settings))
        query_started = time.perf_counter()
        searcher = Searcher.for_store(store, encoder)
        used = mode.value if mode else searcher.default_mode
        run = run_queries(searcher, data.queries, used, keep_identical=keep_identical)
        return run, time.perf_counter() - query_started, used


def _index(
    client: Any, name: str, encoder: Encoder, chunking: ChunkSettings, corpus: Path, batch: int
) -> Any:
    """The collection ``name`` holding ``corpus``, indexed now unless it already does; how
    the indexing went is said on stderr."""
    from twinsearch.indexer.pipeline import index_once

    with index_progress() as show:
        store, report = index_once(
            client,
            name,
            encoder,
            chunking,
            corpus,
            batch_size=batch,
            on_progress=show,
        )
    if report is not None:
        from twinsearch.indexer.update import remember_runtime

        remember_runtime(store, encoder, report)
        print_skips(report.skipped)
        print_index_summary(report, name)
    return store


def _print_result(
    dataset: Path, result: dict[str, Any], metrics: dict[str, float], query_seconds: float
) -> None:
    out.print(
        f"{dataset} ({result['split']}, {result['queries']} queries), {result['mode']}, "
        f"model {result['model']}"
        + (", truncated" if result["truncate"] else "")
        + (", identical ids kept" if result["identical_ids"] == "kept" else ""),
        markup=False,
    )
    for key, label in METRICS.items():
        out.print(f"  {label:<11} {metrics[key]:.4f}", markup=False)
    out.print(
        f"  {result['queries'] / query_seconds:.0f} queries/s; {result['seconds']} s in all",
        markup=False,
    )
