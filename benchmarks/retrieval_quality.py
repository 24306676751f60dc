"""Retrieval quality in one table: every set, base and fine-tuned models, dense, BM25 and
hybrid, with a reference BM25 beside ours.

    python benchmarks/retrieval_quality.py [SET[:SPLIT] ...] [--work DIR] [--skip-training]
        [--trained SET=MODEL_DIR ...] [--truncated] [--ann-check]

SET defaults to ../shared/data/scifact (judged on test) and ../shared/data/nfcorpus-dev
(judged on dev); a SET without :SPLIT is judged on test where it has one, else on dev.

Protocol: BEIR layout and metrics (trec_eval through ir-measures), nDCG@10 (and R@100);
a retrieved document whose id is the query's id is dropped, as BEIR's evaluator does by
default. Each set's train split trains (`twinsearch train SET --split train` with its
defaults, which holds out a part of train to choose epochs on); the evaluation split is
used for nothing but this table. Every twinsearch row runs `twinsearch eval` (the real
index and search path, chunked documents) as a subprocess.

The fine-tuned model of each set is kept in WORK/models/SET, so a rerun skips training;
--skip-training leaves the fine-tuned rows out where no model is there yet, --trained
passes model folders in. BM25 does not depend on the model: it runs once per set.

The reference BM25 is bm25s over whole documents (title and text joined) with the same
k1 0.9 and b 0.4 and the Snowball English stemmer, twice: with twinsearch's analyzer
choices (NLTK's 179 English stopwords, one-letter tokens kept) and with bm25s' defaults
(Lucene's 33 stopwords, one-letter tokens dropped, as Pyserini).

Needs the `bench` extra (bm25s, PyStemmer). Training takes about 15 minutes per set on
2 cores; run it under `nice -n 19` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETS = [ROOT.parent / "shared/data/scifact", ROOT.parent / "shared/data/nfcorpus-dev"]
# Published nDCG@10 on the test split the table evaluates (BEIR paper, Pyserini, MTEB).
PUBLISHED = {
    ("scifact", "test"): {
        "BM25 flat (Pyserini)": 0.679,
        "BM25 (BEIR paper)": 0.665,
        "all-MiniLM-L6-v2 (MTEB)": 0.645,
    }
}
K1, B = 0.9, 0.4
# bm25s' own English list is Lucene's 33 words; its "en_plus" is NLTK's 179, twinsearch's.
ANALYZERS = {
    "twinsearch's analyzer": ("en_plus", r"(?u)\b\w+\b"),
    "bm25s defaults": ("en", r"(?u)\b\w\w+\b"),
}


def twinsearch(*args: str, env: dict[str, str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "twinsearch.cli", *args, "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout))


def reference_bm25(folder: Path, split: str, stopwords: str, pattern: str) -> dict[str, float]:
    """bm25s over whole documents, judged as `twinsearch eval` judges (identical ids out)."""
    import bm25s
    import Stemmer

    from twinsearch import beir
    from twinsearch.evaluate import load_dataset, score

    data = load_dataset(folder, split, lambda path: set())
    ids, texts = [], []
    for _, record in beir.records(data.corpus):
        title, text = str(record.get("title") or ""), str(record.get("text") or "")
        ids.append(str(record["_id"]))
        texts.append(f"{title} {text}" if title else text)
    stemmer = Stemmer.Stemmer("english")

    def tokens(some: list[str]) -> Any:
        return bm25s.tokenize(
            some, stopwords=stopwords, stemmer=stemmer, token_pattern=pattern, show_progress=False
        )

    model = bm25s.BM25(k1=K1, b=B)
    model.index(tokens(texts), show_progress=False)
    qids = list(data.queries)
    found, _ = model.retrieve(
        tokens([data.queries[q] for q in qids]), k=min(101, len(ids)), show_progress=False
    )
    run = {
        q: [SimpleNamespace(doc_id=ids[j]) for j in found[i] if ids[j] != q][:100]
        for i, q in enumerate(qids)
    }
    return score(run, data.qrels)  # type: ignore[arg-type]


def trained_model(
    folder: Path, work: Path, env: dict[str, str], skip: bool
) -> tuple[Path | None, str]:
    """The set's fine-tuned model folder (trained now unless it is there or ``skip``), and
    what to say of it."""
    model = work / "models" / folder.resolve().name
    if model.is_dir():  # trained into a folder beside it, moved here once complete
        return model, f"cached in {model}"
    if skip:
        return None, "not run (--skip-training, no model in the work folder)"
    started = time.perf_counter()
    partial = model.with_name(model.name + ".tmp")
    try:
        out = twinsearch(
            "train", str(folder), "--split", "train", "-o", str(partial), "--overwrite", env=env
        )
    except RuntimeError as exc:
        return None, f"training failed: {str(exc).splitlines()[-1]}"
    model.with_name(model.name + ".train.json").write_text(json.dumps(out, indent=2))
    if not partial.is_dir():
        return None, "training kept no model (not better than the base on held-out queries)"
    partial.rename(model)
    return model, f"trained in {time.perf_counter() - started:.0f} s"


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


def split_of(arg: str) -> tuple[Path, str]:
    path, _, split = arg.partition(":")
    folder = Path(path)
    return folder, split or ("test" if (folder / "qrels/test.tsv").is_file() else "dev")


Row = tuple[str, str, str, str, float | None, float | None]


def one_set(
    folder: Path,
    split: str,
    args: argparse.Namespace,
    env: dict[str, str],
    model: Path | None,
    notes: list[str],
) -> list[Row]:
    """The rows of one set: ours and the references' BM25, then base and ``model``; what
    is not a row goes to ``notes``."""
    name = folder.resolve().name
    where = f"{name} {split}"
    rows: list[Row] = []

    def evaluate(label: str, mode: str, *extra: str) -> str:
        threads = ["--threads", str(args.threads)] if args.threads else []
        r = twinsearch(
            "eval", str(folder), "--split", split, "--mode", mode, *threads, *extra, env=env
        )
        rows.append((where, label, mode, "twinsearch", r["ndcg@10"], r["recall@100"]))
        print(f"{where} {label} {mode}: {r['ndcg@10']:.4f}", file=sys.stderr)
        return str(r["collection"])

    evaluate("-", "bm25")
    for analyzer, (stopwords, pattern) in ANALYZERS.items():
        ref = reference_bm25(folder, split, stopwords, pattern)
        rows.append((where, "-", "bm25", f"bm25s, {analyzer}", ref["ndcg@10"], ref["recall@100"]))
    for label, value in PUBLISHED.get((name, split), {}).items():
        rows.append((where, "-", "-", f"published: {label}", value, None))
    for mode in ("dense", "hybrid"):
        collection = evaluate("base", mode)
        if args.ann_check and mode == "dense":
            from twinsearch.encoders import DEFAULT_MODEL
            from twinsearch.evaluate import load_dataset
            from twinsearch.stores.edge import HNSW_EF

            queries = list(load_dataset(folder, split, lambda path: set()).queries.values())
            check = ann_vs_exact(args.work / "data", collection, queries, DEFAULT_MODEL)
            notes.append(
                f"{where}: HNSW (ef {HNSW_EF}) against exact top 10, base dense: recall@10 "
                f"{check['recall@10']:.4f} over {check['points']} points "
                f"({check['indexed']} in the HNSW index)"
            )
        if args.truncated:
            evaluate("base, truncated", mode, "--truncate")
    for mode in ("dense", "hybrid"):
        if model is None:
            rows.append((where, "fine-tuned", mode, "not run", None, None))
        else:
            evaluate("fine-tuned", mode, "-m", str(model))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sets", nargs="*", default=[str(p) for p in DEFAULT_SETS])
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "twinsearch-quality"
    )
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument(
        "--trained", action="append", default=[], metavar="SET=MODEL_DIR",
        help="a fine-tuned model for the set of that folder name (repeatable)",
    )  # fmt: skip
    parser.add_argument("--truncated", action="store_true", help="also one vector per document")
    parser.add_argument(
        "--ann-check", action="store_true", help="HNSW against exact search, base dense"
    )
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    given = {k: Path(v) for k, _, v in (t.partition("=") for t in args.trained)}
    env = {**os.environ, "TWINSEARCH_DATA_DIR": str(args.work / "data"), "HF_HUB_OFFLINE": "1"}

    rows: list[Row] = []
    notes: list[str] = []
    for folder, split in map(split_of, args.sets):
        name = folder.resolve().name
        if name in given:
            model, said = given[name], f"given: {given[name]}"
        else:
            model, said = trained_model(folder, args.work, env, args.skip_training)
        notes.append(f"{name}: fine-tuned model {said}")
        rows += one_set(folder, split, args, env, model, notes)

    print(
        "BEIR protocol: nDCG@10 and R@100 by trec_eval (ir-measures); a hit whose id is the "
        "query's id dropped;\nfine-tuned on each set's train split with `twinsearch train` "
        "defaults, evaluated on the split named (used for nothing else)."
    )
    print("\n| set, split | model | mode | system | nDCG@10 | R@100 |")
    print("|---|---|---|---|---|---|")
    for where, model_label, mode, system, ndcg, recall in rows:
        cells = [f"{v:.4f}" if v is not None else "-" for v in (ndcg, recall)]
        print(f"| {where} | {model_label} | {mode} | {system} | {cells[0]} | {cells[1]} |")
    print()
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
