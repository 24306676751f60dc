"""Retrieval quality on a BEIR dataset in every mode, with published references beside ours.

    python benchmarks/retrieval_quality.py ../shared/data/scifact [--split test] [--model M]

Runs `twinsearch eval` (the real search path) for: dense on one truncated vector per
document (how BEIR publishes dense results), dense on the default chunked index, bm25 and
hybrid; then measures how far the HNSW index departs from exact search on the same vectors.
The first run indexes the corpus twice (minutes on a CPU); later runs reuse the collections.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Published nDCG@10 on BEIR test splits (BEIR paper, Pyserini, MTEB), for comparison only.
PUBLISHED = {
    "scifact": {
        "BM25 (BEIR paper)": 0.665,
        "BM25 flat (Pyserini)": 0.679,
        "all-MiniLM-L6-v2 (MTEB)": 0.645,
        "bge-small-en-v1.5 (MTEB)": 0.713,
    }
}
RUNS = [
    ("dense, truncated (published protocol)", ["--mode", "dense", "--truncate"]),
    ("dense, chunked (default)", ["--mode", "dense"]),
    ("bm25, chunked", ["--mode", "bm25"]),
    ("hybrid, chunked", ["--mode", "hybrid"]),
    ("bm25, truncated", ["--mode", "bm25", "--truncate"]),
    ("hybrid, truncated", ["--mode", "hybrid", "--truncate"]),
]


def run_eval(dataset: Path, extra: list[str], common: list[str]) -> dict:  # type: ignore[type-arg]
    cmd = [sys.executable, "-m", "twinsearch.cli", "eval", str(dataset), "--json", *common, *extra]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def ann_vs_exact(data_dir: Path, collection: str, queries: list[str], model: str) -> dict:  # type: ignore[type-arg]
    """Copy the collection's vectors into a shard that builds HNSW even at this size, and
    compare its top 10 with an exact scan, for every query of the split."""
    import qdrant_edge as qe

    from twinsearch.encoders import load_encoder
    from twinsearch.stores.edge import HNSW_EF

    source = qe.EdgeShard.load(str(data_dir / "collections" / collection / "shard"))
    records, offset = [], None
    while True:
        page, offset = source.scroll(
            qe.ScrollRequest(offset=offset, limit=2000, with_vector=["dense"])
        )
        records.extend(page)
        if offset is None:
            break
    source.close()
    dim = len(records[0].vector["dense"])
    with tempfile.TemporaryDirectory() as tmp:
        config = qe.EdgeConfig(
            vectors={"dense": qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=10),
        )
        shard = qe.EdgeShard.create(tmp, config)
        for start in range(0, len(records), 2000):
            points = [
                qe.Point(r.id, {"dense": r.vector["dense"]}) for r in records[start : start + 2000]
            ]
            shard.update(qe.UpdateOperation.upsert_points(points))
        shard.optimize()
        indexed = shard.info().indexed_vectors_count
        vectors = load_encoder(model, threads=2).encode_queries(queries)
        agree = 0
        for v in vectors:
            q = qe.Query.Nearest(v.tolist(), using="dense")
            ann = shard.query(
                qe.QueryRequest(limit=10, query=q, params=qe.SearchParams(hnsw_ef=HNSW_EF))
            )
            exact = shard.query(
                qe.QueryRequest(limit=10, query=q, params=qe.SearchParams(exact=True))
            )
            agree += len({p.id for p in ann} & {p.id for p in exact})
        shard.close()
    return {"points": len(records), "indexed": indexed, "recall@10": agree / (10 * len(vectors))}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument(
        "--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "twinsearch-bench"
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    common = ["--split", args.split, "--model", args.model, "--data-dir", str(args.data_dir)]
    common += ["--threads", str(args.threads)]

    results = [(label, run_eval(args.dataset, extra, common)) for label, extra in RUNS]
    queries = results[0][1]["queries"]
    print(f"{args.dataset.name}, split {args.split}, {queries} queries, model {args.model}")
    print(f"{'run':40} {'nDCG@10':>8} {'MRR@10':>8} {'R@100':>8} {'MAP@100':>8} {'q/s':>6}")
    for label, r in results:
        qps = r["queries"] / r["query_seconds"]
        print(
            f"{label:40} {r['ndcg@10']:>8.4f} {r['mrr@10']:>8.4f} "
            f"{r['recall@100']:>8.4f} {r['map@100']:>8.4f} {qps:>6.0f}"
        )
    for label, value in PUBLISHED.get(args.dataset.resolve().name, {}).items():
        print(f"{'published: ' + label:40} {value:>8.3f}")

    from twinsearch.evaluate import load_dataset
    from twinsearch.stores.edge import HNSW_EF

    data = load_dataset(args.dataset, args.split, lambda path: set())
    for label, r in results[:2]:
        check = ann_vs_exact(
            args.data_dir, r["collection"], list(data.queries.values()), args.model
        )
        print(
            f"HNSW (ef {HNSW_EF}) vs exact top 10, {label}: recall@10 {check['recall@10']:.4f} "
            f"over {check['points']} points ({check['indexed']} in the HNSW index)"
        )


if __name__ == "__main__":
    main()
