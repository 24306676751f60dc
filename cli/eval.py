"""`twinsearch eval DATASET_DIR`"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Annotated

import typer

from twinsearch.cli.common import (
    DataDir,
    JsonOut,
    ModeOption,
    QdrantUrl,
    SearchMode,
    err,
    errors_to_exit,
    export_query_encoder,
    index_progress,
    load_encoder,
    open_client,
    out,
    settings_from,
)

# Labelled as `twinsearch train` labels them.
METRICS = {
    "ndcg@10": "nDCG@10",
    "mrr@10": "MRR@10",
    "recall@100": "Recall@100",
    "map@100": "MAP@100",
}


def _collection_name(folder: Path, fingerprint: str, truncate: bool) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", folder.resolve().name).strip("-.") or "dataset"
    return f"eval-{stem[:30]}-{fingerprint[:10]}" + ("-truncate" if truncate else "")


@errors_to_exit
def eval_(
    dataset: Annotated[
        Path,
        typer.Argument(
            metavar="DATASET",
            help="BEIR folder: corpus.jsonl[.gz], queries.jsonl[.gz], qrels/SPLIT.tsv",
        ),
    ],
    split: Annotated[str, typer.Option(help="Which qrels/SPLIT.tsv to judge by")] = "test",
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Model to evaluate: a sentence-transformers folder or id "
            "[env: TWINSEARCH_MODEL; default: the bundled all-MiniLM-L6-v2]",
            show_default=False,
        ),
    ] = None,
    mode: ModeOption = SearchMode.dense,
    truncate: Annotated[
        bool,
        typer.Option(
            "--truncate",
            help="One vector per document, title and text joined and cut at the model's "
            "maximum length, as BEIR results are published (default: chunked, as indexed)",
        ),
    ] = False,
    run_file: Annotated[
        Path | None, typer.Option("--run", help="Also write the ranking as a TREC run file")
    ] = None,
    json_out: JsonOut = False,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads for the encoder [default: free cores]")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Texts per encoder batch [default: 32]")
    ] = None,
    data_dir: DataDir = None,
    qdrant_url: QdrantUrl = None,
) -> None:
    """Measure retrieval quality on a BEIR-layout dataset through the real search path.

    The corpus is indexed once into a collection of its own (reused while the model and the
    corpus file are unchanged); every query of the split then runs as `twinsearch search`
    runs it. Reports nDCG@10, MRR@10, Recall@100 and MAP@100.
    """
    from twinsearch.encoders import DEFAULT_MODEL
    from twinsearch.evaluate import load_dataset, run_queries, score, write_trec_run
    from twinsearch.indexer.chunking import ChunkSettings
    from twinsearch.indexer.pipeline import index_once
    from twinsearch.indexer.sources import Corpus
    from twinsearch.search import Searcher

    started = time.perf_counter()
    settings = settings_from(
        model=model,
        threads=threads,
        batch_size=batch_size,
        data_dir=data_dir,
        qdrant_url=qdrant_url,
    )
    data = load_dataset(dataset, split, lambda path: {d.doc_id for d in Corpus([path])})
    for warning in data.warnings:
        err.print(f"warning: {warning}", markup=False)
    encoder = load_encoder(settings, settings.model or DEFAULT_MODEL)
    export_query_encoder(settings, encoder)
    chunking = ChunkSettings(encoder.window, settings.chunk_overlap, truncate=truncate)
    name = _collection_name(dataset, encoder.fingerprint, truncate)
    with open_client(settings) as client:
        with index_progress() as show:
            store, report = index_once(
                client,
                name,
                encoder,
                chunking,
                data.corpus,
                batch_size=max(settings.batch_size * 4, 64),
                on_progress=show,
            )
        if report is not None:
            for where, why in report.skipped[:20]:
                err.print(f"warning: skipped {where}: {why}", markup=False)
            err.print(
                f"indexed {report.documents} documents ({report.chunks} chunks) into "
                f"{name!r} in {report.seconds:.1f} s",
                markup=False,
            )
        query_started = time.perf_counter()
        run = run_queries(Searcher.for_store(store, encoder), data.queries, mode.value)
        query_seconds = time.perf_counter() - query_started
    metrics = score(run, data.qrels)
    if run_file:
        write_trec_run(run, run_file, f"twinsearch-{mode.value}")
    result = {
        **{k: round(v, 4) for k, v in metrics.items()},
        "queries": len(data.queries),
        "mode": mode.value,
        "model": encoder.name,
        "split": split,
        "truncate": truncate,
        "collection": name,
        "seconds": round(time.perf_counter() - started, 1),
        "query_seconds": round(query_seconds, 2),
    }
    if json_out:
        print(json.dumps(result, indent=2))
        return
    out.print(
        f"{dataset} ({split}, {len(data.queries)} queries), {mode.value}, model {encoder.name}"
        + (", truncated" if truncate else ""),
        markup=False,
    )
    for key, label in METRICS.items():
        out.print(f"  {label:<11} {metrics[key]:.4f}", markup=False)
    out.print(
        f"  {len(data.queries) / query_seconds:.0f} queries/s; {result['seconds']} s in all",
        markup=False,
    )
