"""Index throughput: end-to-end `Indexer` against a bare encoder on the same chunks.

    python benchmarks/index_throughput.py examples/corpus examples/encyclopedia.jsonl
    python benchmarks/index_throughput.py ../shared/data/scifact/corpus.jsonl.gz --runs 1

Each run indexes into a fresh embedded collection; the baseline encodes exactly the same
encoder inputs with the same batch size in the same process. Medians over --runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    from twinsearch.collection import open_for_write
    from twinsearch.cores import free_cores
    from twinsearch.encoders import load_encoder
    from twinsearch.indexer.chunking import ChunkSettings, chunk_document
    from twinsearch.indexer.pipeline import Indexer
    from twinsearch.indexer.sources import Corpus
    from twinsearch.stores import connect

    threads = args.threads or free_cores()
    t0 = time.perf_counter()
    encoder = load_encoder(args.model, threads=threads, batch_size=args.batch_size)
    load_s = time.perf_counter() - t0
    chunking = ChunkSettings(encoder.window, 32)
    docs = list(Corpus(args.paths))
    inputs = [
        chunk.input for doc in docs for chunk in chunk_document(doc, encoder.tokenizer, chunking)
    ]
    encoder.encode_documents(inputs[:8])  # warm-up outside the timings

    bare, full = [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        encoder.encode_documents(inputs)
        bare.append(len(inputs) / (time.perf_counter() - t0))
        with tempfile.TemporaryDirectory() as tmp:
            client = connect(data_dir=tmp)
            store, bm25 = open_for_write(client, "bench", encoder, chunking.as_dict())
            t0 = time.perf_counter()
            report = Indexer(
                encoder, store, chunking, bm25=bm25, batch_size=4 * args.batch_size
            ).run(Corpus(args.paths))
            full.append(report.chunks / (time.perf_counter() - t0))
            assert store.count() == len(inputs), (store.count(), len(inputs))
            client.close()

    print(
        f"model {args.model}: loaded in {load_s:.1f} s, {threads} threads, batch {args.batch_size}"
    )
    print(f"corpus: {len(docs)} documents, {len(inputs)} chunks (window {chunking.window})")
    rows = [("bare encode, chunks/s", bare), ("index, chunks/s", full)]
    rows.append(("ratio index/bare", [f / b for f, b in zip(full, bare, strict=True)]))
    print(f"{'':24}{'median':>10}   runs")
    for label, values in rows:
        runs = ", ".join(f"{x:.3g}" for x in values)
        print(f"{label:24}{statistics.median(values):>10.3g}   {runs}")


if __name__ == "__main__":
    main()
