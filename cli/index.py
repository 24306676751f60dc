"""`twinsearch index PATH...`"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from twinsearch.cli.common import (
    Collection,
    DataDir,
    Model,
    QdrantUrl,
    err,
    errors_to_exit,
    index_progress,
    load_encoder,
    open_client,
    settings_from,
)

MAX_SKIP_LINES = 20


@errors_to_exit
def index(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Folders of .txt/.md files, or .jsonl[.gz] corpora (BEIR layout)"),
    ],
    collection: Collection = None,
    model: Model = None,
    chunk_size: Annotated[
        int | None,
        typer.Option(help="Tokens per chunk [default: the model's window]", show_default=False),
    ] = None,
    chunk_overlap: Annotated[
        int | None, typer.Option(help="Tokens shared by consecutive chunks [default: 32]")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Texts per encoder batch [default: 32]")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads for the encoder [default: free cores]")
    ] = None,
    data_dir: DataDir = None,
    qdrant_url: QdrantUrl = None,
) -> None:
    """Embed documents and store their vectors, one point per chunk.

    Re-running on the same files overwrites their points instead of duplicating them.
    """
    from twinsearch.collections import recorded_model
    from twinsearch.encoders import DEFAULT_MODEL
    from twinsearch.indexer.chunking import ChunkSettings
    from twinsearch.indexer.pipeline import Indexer, IndexReport, open_collection
    from twinsearch.indexer.sources import Corpus

    settings = settings_from(
        collection=collection,
        model=model,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        batch_size=batch_size,
        threads=threads,
        data_dir=data_dir,
        qdrant_url=qdrant_url,
    )
    report = IndexReport()
    corpus = Corpus(list(paths), on_skip=report.skip)  # a bad path fails before the model loads
    with open_client(settings) as client:
        store = client.collection(settings.collection)
        name = settings.model or (recorded_model(store) if store.exists() else DEFAULT_MODEL)
        encoder = load_encoder(settings, name)
        chunking = ChunkSettings(
            window=min(settings.chunk_size or encoder.window, encoder.window),
            overlap=settings.chunk_overlap,
        )
        store, bm25, docs = open_collection(client, settings.collection, encoder, chunking, corpus)
        with index_progress() as show:
            indexer = Indexer(
                encoder,
                store,
                chunking,
                bm25=bm25,
                report=report,
                batch_size=max(settings.batch_size * 4, 64),
                on_progress=lambda report: show(corpus, report),
            )
            indexer.run(docs)
    for where, why in report.skipped[:MAX_SKIP_LINES]:
        err.print(f"warning: skipped {where}: {why}", markup=False)
    if len(report.skipped) > MAX_SKIP_LINES:
        err.print(f"warning: ... and {len(report.skipped) - MAX_SKIP_LINES} more skipped")
    rate = report.chunks / report.seconds if report.seconds else 0.0
    err.print(
        f"indexed {report.documents} documents ({report.chunks} chunks) into "
        f"{settings.collection!r} in {report.seconds:.1f} s, {rate:.1f} chunks/s"
        + (f"; skipped {len(report.skipped)}" if report.skipped else ""),
        markup=False,
    )
