"""Search latency at 100k chunks: cold (a fresh `twinsearch search` process), warm (the
model and collection kept open, as `twinsearch shell` does), and `twinsearch --help`.

    python benchmarks/search_latency.py path/to/scifact [--copies 10] [--runs 5] [--served]

The 100k-chunk collection is the dataset's chunked collection (built by `twinsearch eval`
if missing, real all-MiniLM-L6-v2 vectors) copied --copies times under new ids, built once
and reused. Warm latency is measured over every query of the test split; cold latency as
the median of --runs processes, to the moment the results are all printed (what a user
waits for) and to the process's end. ``--served`` also times cold searches while a
`twinsearch serve` process holds the data folder (they go through it), in rounds alternating
with searches alone, and nothing else.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
NAME = "latency-bench"


def build(data_dir: Path, dataset: Path, copies: int, segment_mb: int | None) -> None:
    from twinsearch.collection import open_for_write
    from twinsearch.encoders import load_encoder, onnx
    from twinsearch.indexer.chunking import ChunkSettings
    from twinsearch.indexer.pipeline import index_once
    from twinsearch.nouns import Point
    from twinsearch.sparse import Bm25Settings
    from twinsearch.stores import connect

    client = connect(data_dir=data_dir, segment_mb=segment_mb)
    encoder = load_encoder(threads=2)
    onnx.export(encoder, data_dir / "models")  # as `twinsearch index` does
    if client.collection(NAME).exists():
        client.close()
        return
    chunking = ChunkSettings(encoder.window, 32)
    corpus = next(dataset.glob("corpus.jsonl*"))
    from twinsearch.evaluate import collection_name

    # The collection `twinsearch eval` builds for this dataset, reused if it is there.
    source_name = collection_name(dataset, encoder.fingerprint, truncate=False)
    source, _ = index_once(client, source_name, encoder, chunking, corpus)
    meta = source.metadata()
    records = [point for page in source.points() for point in page]
    target, _ = open_for_write(
        client, NAME, encoder, chunking.as_dict(), Bm25Settings.from_dict(meta["bm25"])
    )
    from twinsearch.indexer.pipeline import point_id

    for copy in range(copies):
        batch = []
        for r in records:
            payload = dict(r.payload, doc_id=f"{r.payload['doc_id']}#{copy}")
            pid = point_id(payload.get("root", ""), payload["doc_id"], payload["chunk"])
            batch.append(Point(pid, r.vector, payload, r.sparse))
            if len(batch) == 2000:
                target.upsert(batch)
                batch = []
        target.upsert(batch)
    target.finish()
    print(f"built {NAME}: {target.count()} chunks", file=sys.stderr)
    client.close()


def cold(args: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Seconds from process start until its results are all printed, and until it exits,
    for ``runs`` fresh processes. They run as an installed copy does, with bytecode caches
    (pip compiles them at install; a first, unmeasured run writes them here), whatever
    PYTHONDONTWRITEBYTECODE says in this environment."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    expected = subprocess.run(args, check=True, capture_output=True, env=env).stdout
    printed, ended = [], []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        assert proc.stdout is not None
        got = b""
        while len(got) < len(expected) and (chunk := proc.stdout.read1(65536)):
            got += chunk
        printed.append(time.perf_counter() - started)
        got += proc.stdout.read()
        proc.wait()
        ended.append(time.perf_counter() - started)
        if proc.returncode != 0 or got != expected:
            raise SystemExit(f"{' '.join(args)}: exit {proc.returncode}, or another output")
    return printed, ended


def served_cold(args: argparse.Namespace, search: list[str]) -> None:
    """Cold searches alone and through a `twinsearch serve` holding the folder, in rounds."""
    import signal

    rounds = 3
    alone: list[float] = []
    through: list[float] = []
    import socket

    for _ in range(rounds):
        alone += cold(search, args.runs)[0]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen(
            [sys.executable, "-m", "twinsearch.cli", "serve", "--port", str(port)]
            + ["-c", NAME, "--data-dir", str(args.data_dir)],
            stderr=subprocess.DEVNULL,
        )
        while not (args.data_dir / "serve.json").exists():
            time.sleep(0.05)
        through += cold(search, args.runs)[0]
        server.send_signal(signal.SIGINT)
        server.wait()
    for label, times in (("alone", alone), ("while serve runs", through)):
        print(f"cold search {label:17}: results printed, median {statistics.median(times):.3f} s")
    print(f"({rounds} rounds of {args.runs} runs each, alternating)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "twinsearch-latency"
    )
    parser.add_argument(
        "--segment-mb", type=int, help="segment size of the collection when it is built"
    )
    parser.add_argument(
        "--served", action="store_true", help="only: cold search alone and while serve runs"
    )
    args = parser.parse_args()
    build(args.data_dir, args.dataset, args.copies, args.segment_mb)

    from twinsearch.collection import open_for_search
    from twinsearch.encoders import DEFAULT_MODEL, load_encoder, onnx
    from twinsearch.evaluate import load_dataset
    from twinsearch.search import Searcher
    from twinsearch.stores import connect

    queries = list(load_dataset(args.dataset, "test", lambda p: set()).queries.values())
    exe = [sys.executable, "-m", "twinsearch.cli"]
    search = [*exe, "search", queries[0], "-c", NAME, "--data-dir", str(args.data_dir)]
    if args.served:
        served_cold(args, search)
        return
    colds = {
        "search, ONNX query encoder (default)": cold(search, args.runs),
        "search, torch (naive: --model given)": cold([*search, "-m", DEFAULT_MODEL], args.runs),
        "--help": cold([*exe, "--help"], args.runs),
    }

    client = connect(data_dir=args.data_dir)
    torch_encoder = load_encoder(threads=2)
    store = open_for_search(client, NAME, torch_encoder)
    chunks = store.count()
    rows = []
    top10: dict[str, list[list[str]]] = {}
    for label, encoder in [
        ("ONNX", onnx.load(args.data_dir / "models", torch_encoder.fingerprint, threads=2)),
        ("torch", torch_encoder),
    ]:
        searcher = Searcher.for_store(store, encoder)
        top10[label] = [[h.doc_id for h in hits] for hits in searcher.search_many(queries, 10)]
        for mode in ("dense", "hybrid"):
            searcher.search(queries[0], 10, mode)  # type: ignore[arg-type]
            warm = []
            for query in queries:
                started = time.perf_counter()
                searcher.search(query, 10, mode)  # type: ignore[arg-type]
                warm.append((time.perf_counter() - started) * 1000)
            warm.sort()
            rows.append((label, mode, warm[len(warm) // 2], warm[int(len(warm) * 0.99)]))
    client.close()

    print(f"{chunks} chunks, {len(queries)} queries, model {torch_encoder.name}")
    for label, (printed, ended) in colds.items():
        runs = ", ".join(f"{t:.2f}" for t in printed)
        print(
            f"cold {label:38}: results printed, median {statistics.median(printed):.2f} s "
            f"({runs}); process ended, median {statistics.median(ended):.2f} s"
        )
    for label, mode, p50, p99 in rows:
        print(f"warm {label:>5} {mode:>6}: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    same = sum(a == b for a, b in zip(top10["ONNX"], top10["torch"], strict=True))
    print(f"ONNX and torch give the same top 10 (ids and order) for {same}/{len(queries)} queries")


if __name__ == "__main__":
    main()
