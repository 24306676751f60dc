"""Search at large collection sizes: a collection of N chunks built from real vectors through
the store code `twinsearch index` writes with, then opened, searched and measured.

    python benchmarks/scale.py /tmp/twinsearch-latency --points 300000 [--json]
        [--source-collection latency-bench] [--data-dir D] [--queries 1000] [--noise 0.02]
        [--segment-mb MB] [--runs 5] [--field-queries 100]

SOURCE is a twinsearch data folder holding a collection of real vectors (by default the one
benchmarks/search_latency.py builds: SciFact chunks embedded by all-MiniLM-L6-v2, with their
payloads and BM25 vectors). Its distinct chunks (one per document hash and chunk number)
are copied, a document at a time, until N chunks are written (built once in --data-dir,
default /tmp/twinsearch-scale-N, and reused while it holds N): each copy's vector is its
source's plus Gaussian noise of --noise per dimension, made unit length again (never an
exact duplicate), its payload the source's (text, title, sentences, sentence vectors...)
under a new document id, in one of 100 folders (``root``), modified on one of 100 days,
with a user field ``year`` (``fields.year``) of one of 100 values, each drawn uniformly
per copied document; its BM25 vector the source's. The build runs `open_for_write`,
`Store.upsert` a page of 1,000 at a time and `Store.finish`, in a process of its own whose
peak RSS (VmHWM: its ru_maxrss would count this process's own peak, inherited at exec) is
the build's, the source's chunks it holds (build_rss_before_writes_mb) included.

--queries chunks of the source drawn at random give the queries: the text of each is its
first sentence, its vector (equal to no stored one) that text embedded by the
collection's query encoder (the ONNX export in SOURCE/models, copied beside the collection
as `twinsearch index` leaves one, else the torch model), or, with neither, the chunk's
vector with noise.

Measured, in this order: disk and segments (the segment folders of the shard; the
engine's own count too); `open_s`, opening the collection in a fresh process (median of
3; the page cache is as the build left it); `cold_search_s`, a fresh `twinsearch search`
process to its exit, each of --runs with a query of its own (median), and
`cold_search_repeat_s`, --runs processes with one query to its last line of results (as
search_latency.py measures it); with --warm-cache, every file of the
collection read once (as a machine with the memory for it holds it after serving a while);
then in one process that keeps the collection open: warm `Searcher.search` p50/p99 in
dense and hybrid mode, taking turns (query embedding and passages included), its RSS after
those, the store's own dense search against an exact scan (recall@10), filtered store
searches (1% and 10% of the points, on indexed fields and, for the first --field-queries
queries, on the unindexed user field, whose filters scan every payload: seconds a query
at 1M points), each against an exact scan under the same filter, and the pass over every
payload that each `twinsearch index` run starts with (`manifest_s`). Last, with
--first-search, `first_search_s`: a search after emptying the page cache (as after a
reboot; root only).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
NAME = "scale-bench"
PAGE = 1000
BUCKETS = 100
"""Values of each filter field: ``= v`` selects 1% of the points, ten of them 10%."""
DAY0 = "2025-01-01"
BUILD_RECORD = "scale-build.json"
QUERY_FILE = "scale-queries.json"
SEGMENTS_HOW = (
    "directories under collections/NAME/shard/segments, by dense index: hnsw (sealed) or "
    "plain (appendable, where new writes go)"
)


def day(d: int) -> str:
    from datetime import date, datetime, timedelta, timezone

    start = datetime.combine(date.fromisoformat(DAY0), datetime.min.time(), timezone.utc)
    return (start + timedelta(days=d)).isoformat()


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def read_source(source: Path, name: str) -> dict:  # type: ignore[type-arg]
    """The source collection's distinct chunks, grouped into documents."""
    import numpy as np

    from twinsearch.stores import connect

    client = connect(data_dir=source)
    store = client.collection(name)
    meta = store.metadata()
    seen: set[object] = set()
    vectors, payloads, sparse = [], [], []
    docs: dict[str, list[int]] = {}
    for page in store.points():
        for point in page:
            payload = point.payload
            sha = payload.get("content_sha")
            key = (sha, payload.get("chunk")) if sha else np.asarray(point.vector).tobytes()
            if key in seen:
                continue
            seen.add(key)
            docs.setdefault(str(sha or payload.get("doc_id")), []).append(len(payloads))
            vectors.append(np.asarray(point.vector, dtype=np.float32))
            payloads.append(payload)
            s = point.sparse
            sparse.append(None if s is None else (list(s.indices), list(s.values)))
    client.close()
    groups = [sorted(g, key=lambda i: int(payloads[i].get("chunk", 0))) for g in docs.values()]
    return {
        "meta": meta,
        "vectors": np.stack(vectors),
        "payloads": payloads,
        "sparse": sparse,
        "groups": groups,
    }


def build_child(source_pickle: Path, data_dir: Path, n: int, noise: float, seed: int) -> None:
    """Runs in its own process: writes the collection, prints what the build took."""
    from types import SimpleNamespace

    import numpy as np

    from twinsearch.collection import open_for_write, point_id
    from twinsearch.nouns import Point, SparseVector
    from twinsearch.sparse import Bm25Settings
    from twinsearch.stores import connect

    with source_pickle.open("rb") as fh:
        src = pickle.load(fh)
    meta, vectors, payloads, groups = src["meta"], src["vectors"], src["payloads"], src["groups"]
    sparse = [None if s is None else SparseVector(*s) for s in src["sparse"]]
    dim = vectors.shape[1]
    rng = np.random.default_rng(seed)
    encoder = SimpleNamespace(**meta["encoder"])  # what open_for_write records of it
    rss_before = rss_mb()
    started = time.perf_counter()
    client = connect(data_dir=data_dir, segment_mb=src.get("segment_mb"))
    store, _ = open_for_write(
        client, NAME, encoder, meta["chunking"], Bm25Settings.from_dict(meta["bm25"])
    )
    doc_ids: dict[int, str] = {}
    taken: set[str] = set()
    for g in groups:  # one id per source document, made distinct if two share one
        doc_id = str(payloads[g[0]]["doc_id"])
        doc_ids[g[0]] = f"{doc_id}.{g[0]}" if doc_id in taken else doc_id
        taken.add(doc_ids[g[0]])
    cosines = []
    written, copy, page = 0, 0, []  # page: (source index, payload)

    def flush() -> None:
        rows = [j for j, _ in page]
        noisy = vectors[rows] + rng.normal(0.0, noise, (len(rows), dim)).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        cosines.append(float(np.mean(np.sum(noisy * vectors[rows], axis=1))))
        points = []
        for (j, payload), vector in zip(page, noisy, strict=True):
            pid = point_id(payload["root"], payload["doc_id"], int(payload.get("chunk", 0)))
            points.append(Point(pid, vector, payload, sparse[j]))
        store.upsert(points)
        page.clear()

    while written < n:
        for g in rng.permutation(len(groups)):
            group = groups[g]
            root = f"/data/scale/folder-{int(rng.integers(BUCKETS)):02d}"
            modified, year = day(int(rng.integers(BUCKETS))), 1926 + int(rng.integers(BUCKETS))
            for j in group:
                old = payloads[j]
                fields = old.get("fields") if isinstance(old.get("fields"), dict) else {}
                source = f"{root}/{Path(str(old.get('source', 'corpus'))).name}"
                page.append(
                    (
                        j,
                        dict(
                            old,
                            doc_id=f"{doc_ids[group[0]]}@{copy}",
                            root=root,
                            source=source,
                            modified=modified,
                            fields={**fields, "year": year},
                        ),
                    )
                )
                written += 1
                if len(page) == PAGE:
                    flush()
                if written == n:
                    break
            if written == n:
                break
        copy += 1
    if page:
        flush()
    finishing = time.perf_counter()
    store.finish()
    finish_s = time.perf_counter() - finishing
    count = store.count()
    client.close()
    build_s = time.perf_counter() - started
    print(
        json.dumps(
            {
                "points": count,
                "build_s": round(build_s, 2),
                "build_finish_s": round(finish_s, 2),
                "build_points_per_s": round(count / build_s),
                "build_peak_rss_mb": round(rss_mb("VmHWM")),
                "build_rss_before_writes_mb": round(rss_before),
                "mean_cos_to_source": round(statistics.fmean(cosines), 4),
            }
        )
    )


def on_disk(folder: Path) -> dict:  # type: ignore[type-arg]
    """Disk the collection takes (allocated blocks) and its segments by dense index kind."""
    used = sum(p.lstat().st_blocks * 512 for p in folder.rglob("*") if not p.is_symlink())
    kinds = []
    for segment in sorted((folder / "shard" / "segments").iterdir()):
        if segment.is_dir():
            config = json.loads((segment / "segment.json").read_text())["config"]
            kinds.append(config["vector_data"]["dense"]["index"]["type"])
    return {
        "segments": len(kinds),
        "segments_hnsw": kinds.count("hnsw"),
        "segments_plain": kinds.count("plain"),
        "disk_mb": round(used / 2**20, 1),
    }


OPEN_CHILD = r"""
import json, sys, time
from twinsearch.stores import connect
started = time.perf_counter()
client = connect(data_dir=sys.argv[1])
client.collection(sys.argv[2]).open()
print(json.dumps(time.perf_counter() - started))
client.close()
"""


def percentiles(ms: list[float]) -> tuple[float, float]:
    ms = sorted(ms)
    return round(ms[len(ms) // 2], 2), round(ms[int(len(ms) * 0.99)], 2)


def load_query_encoder(data_dir: Path, meta: dict):  # type: ignore[no-untyped-def,type-arg]
    """The collection's query encoder: its ONNX export, else the torch model, else None."""
    from twinsearch.encoders import load_encoder, onnx
    from twinsearch.errors import TwinsearchError

    fingerprint = meta["encoder"]["fingerprint"]
    try:
        return onnx.load(data_dir / "models", fingerprint, threads=2), "ONNX export"
    except TwinsearchError:
        pass
    try:
        encoder = load_encoder(meta["encoder"]["name"], threads=2)
    except (TwinsearchError, OSError):
        return None, None
    return (encoder, "torch") if encoder.fingerprint == fingerprint else (None, None)


def measure_child(data_dir: Path, field_queries: int) -> None:
    """Runs in its own process, with the collection open throughout: prints the measures."""
    import numpy as np

    from twinsearch.indexer.changes import load_manifest
    from twinsearch.search import Searcher
    from twinsearch.stores import Match, Range, connect

    queries = json.loads((data_dir / QUERY_FILE).read_text())
    texts = queries["texts"]
    client = connect(data_dir=data_dir)
    store = client.collection(NAME)
    meta = store.metadata()
    out: dict[str, object] = {}
    encoder, runtime = load_query_encoder(data_dir, meta)
    if encoder is not None:
        vectors = np.asarray(encoder.encode_queries(texts), dtype=np.float32)
        out["query_vectors"] = f"first sentences embedded by the query encoder ({runtime})"
        searcher = Searcher.for_store(store, encoder)
        # The modes take turns, each first on every other query: a searcher keeps what it
        # learns of the words it has shown, which would favour whichever mode ran second.
        ms: dict[str, list[float]] = {"dense": [], "hybrid": []}
        for mode in ms:
            searcher.search(texts[0], 10, mode)
        for i, text in enumerate(texts):
            for mode in ("dense", "hybrid") if i % 2 else ("hybrid", "dense"):
                started = time.perf_counter()
                searcher.search(text, 10, mode)
                ms[mode].append((time.perf_counter() - started) * 1000)
        out["warm_p50_ms"], out["warm_p99_ms"] = percentiles(ms["dense"])
        out["warm_hybrid_p50_ms"], out["warm_hybrid_p99_ms"] = percentiles(ms["hybrid"])
    else:
        vectors = np.asarray(queries["noisy_vectors"], dtype=np.float32)
        out["query_vectors"] = "held-out chunks' vectors with noise (no query encoder)"
        for key in ("warm", "warm_hybrid"):
            out[f"{key}_p50_ms"] = out[f"{key}_p99_ms"] = None
    out["serve_rss_mb"] = round(rss_mb())
    out["serve_rss_anon_mb"] = round(rss_mb("RssAnon"))

    def run(filters: list, n: int, prefix: str) -> None:  # type: ignore[type-arg]
        """p50/p99 of ``Store.search(10)`` over the first ``n`` queries (query i under
        filter i mod len(filters)), the p50 of an exact scan, and recall@10 against it."""
        ms, exact_ms, recalls = [], [], []
        store.search(10, dense=vectors[0].tolist(), filter=filters[0])
        for i, q in enumerate(vectors[:n].tolist()):
            where = filters[i % len(filters)]
            started = time.perf_counter()
            found = store.search(10, dense=q, filter=where)
            ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            truth = store.search(10, dense=q, filter=where, exact=True)
            exact_ms.append((time.perf_counter() - started) * 1000)
            if truth:
                recalls.append(len({p.id for p in found} & {p.id for p in truth}) / len(truth))
        out[f"{prefix}p50_ms"], out[f"{prefix}p99_ms"] = percentiles(ms)
        out[f"{prefix}exact_p50_ms"] = percentiles(exact_ms)[0]
        out[f"{prefix}recall_at_10"] = round(statistics.fmean(recalls), 4)

    n = len(vectors)
    folders = [[Match("root", f"/data/scale/folder-{b:02d}")] for b in range(BUCKETS)]
    tenths = [[Range("modified", gte=day(t), lt=day(t + 10))] for t in range(0, BUCKETS, 10)]
    years = [[Match("fields.year", 1926 + b)] for b in range(BUCKETS)]
    decades = [[Range("fields.year", gte=1926 + t, lt=1936 + t)] for t in range(0, BUCKETS, 10)]
    run([None], n, "store_dense_")
    out["recall_at_10"] = out["store_dense_recall_at_10"]
    run(folders, n, "filtered_")
    run(tenths, n, "filtered10_")
    run(years, min(n, field_queries), "field_filtered_")
    run(decades, min(n, field_queries), "field_filtered10_")
    started = time.perf_counter()
    load_manifest(store)
    out["manifest_s"] = round(time.perf_counter() - started, 2)
    out["segments_engine"] = store._shard.info().segments_count  # the shard, as Qdrant sees it
    client.close()
    print(json.dumps(out))


def first_sentence(payload: dict) -> str:  # type: ignore[type-arg]
    """A chunk's first whole sentence of four words or more, as a query (a chunk after the
    first starts inside a sentence: one that starts with a capital letter is preferred)."""
    text = str(payload.get("text", ""))
    flat = payload.get("sentences") or []
    spans = zip(flat[::2], flat[1::2], strict=False)
    sentences = [text[int(a) : int(b)].strip(" '\"\n") for a, b in spans]
    sentences = [s for s in sentences if len(s.split()) >= 4]
    whole = [s for s in sentences if s[0].isupper()]
    return (whole or sentences or [text[:200].strip() or str(payload.get("title", "query"))])[0]


def prepare(args: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    """Build the collection unless it holds --points already, write the queries; what the
    build took (this run's, or the one recorded when it was built)."""
    import numpy as np

    from twinsearch.stores import connect

    record_file, query_file = args.data_dir / BUILD_RECORD, args.data_dir / QUERY_FILE
    client = connect(data_dir=args.data_dir)
    store = client.collection(NAME)
    have = store.count() if store.exists() else 0
    client.close()
    built = have == args.points and record_file.is_file()
    asked = (args.queries, args.noise, args.seed, str(args.source), args.source_collection)
    queried = query_file.is_file() and tuple(json.loads(query_file.read_text())["asked"]) == asked
    record = json.loads(record_file.read_text()) if built else {}
    if not (built and queried):
        started = time.perf_counter()
        src = read_source(args.source, args.source_collection)
        source_read_s = time.perf_counter() - started
        rng = np.random.default_rng(args.seed + 1)
        picked = rng.choice(len(src["payloads"]), min(args.queries, len(src["payloads"])), False)
        unique = len(src["payloads"])
        noisy = src["vectors"][picked] + rng.normal(0, args.noise, src["vectors"][picked].shape)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        query_file.parent.mkdir(parents=True, exist_ok=True)
        texts = [first_sentence(src["payloads"][j]) for j in picked]
        query_file.write_text(
            json.dumps({"asked": asked, "texts": texts, "noisy_vectors": noisy.tolist()})
        )
    if not built:
        if have:
            client = connect(data_dir=args.data_dir)
            client.drop(NAME)
            client.close()
        src["segment_mb"] = args.segment_mb
        with tempfile.NamedTemporaryFile(dir=args.data_dir, suffix=".pickle") as fh:
            pickle.dump(src, fh)
            fh.flush()
            del src
            print(f"building {args.points} points in {args.data_dir}...", file=sys.stderr)
            command = [sys.executable, __file__, str(args.source), "--stage", "build"]
            command += ["--points", str(args.points), "--data-dir", str(args.data_dir)]
            command += ["--noise", str(args.noise), "--seed", str(args.seed)]
            command += ["--source-pickle", fh.name]
            done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise SystemExit(f"the build failed (exit {done.returncode})")
        record = {
            **json.loads(done.stdout.strip().splitlines()[-1]),
            "source_read_s": round(source_read_s, 2),
            "source_unique_chunks": unique,
            "noise_sigma": args.noise,
            "segment_mb": args.segment_mb,
        }
        record_file.write_text(json.dumps(record))
    export = args.source / "models"
    if export.is_dir() and not (args.data_dir / "models").exists():
        import shutil

        shutil.copytree(export, args.data_dir / "models")  # as `twinsearch index` leaves it
    return {**record, "build_reused": built}


def fresh(searches: list[list[str]]) -> list[float]:
    """Seconds to the exit of each search, a fresh process with a query of its own: the
    page cache holds what earlier processes read, not what this query needs."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    took = []
    for args in searches:
        started = time.perf_counter()
        done = subprocess.run(args, capture_output=True, env=env)
        took.append(time.perf_counter() - started)
        if done.returncode != 0 or not done.stdout.strip():
            raise SystemExit(f"{' '.join(args)}: exit {done.returncode}, or no results")
    return took


def first_search(search: list[str], data_dir: Path) -> float | None:
    """A search after the page cache was emptied (as after a reboot): needs root."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return None
    return round(fresh([search])[0], 3)


def read_whole(folder: Path) -> float:
    """Read every file of the collection once, as a machine with the memory for it holds it
    after serving a while: the warm measures then show the engine, not the disk."""
    started = time.perf_counter()
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                while fh.read(1 << 24):
                    pass
    return round(time.perf_counter() - started, 2)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("source", type=Path, help="a data folder holding real vectors")
    parser.add_argument("--points", type=int, required=True)
    parser.add_argument("--source-collection", default="latency-bench")
    parser.add_argument("--data-dir", type=Path, help="default: /tmp/twinsearch-scale-N")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--noise", type=float, default=0.02, help="per dimension, before norming")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--segment-mb", type=int, help="segment size of the collection built")
    parser.add_argument("--runs", type=int, default=5, help="cold search processes")
    parser.add_argument(
        "--field-queries",
        type=int,
        default=100,
        help="queries under the filters on the unindexed field (each scans every payload)",
    )
    parser.add_argument(
        "--first-search",
        action="store_true",
        help="also time a search after emptying the page cache (root only)",
    )
    parser.add_argument(
        "--warm-cache",
        action="store_true",
        help="read the whole collection once before the warm measures",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object, nothing else")
    parser.add_argument("--stage", choices=["build", "measure"], help=argparse.SUPPRESS)
    parser.add_argument("--source-pickle", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.data_dir is None:
        args.data_dir = Path(tempfile.gettempdir()) / f"twinsearch-scale-{args.points}"
    if args.stage == "build":
        build_child(args.source_pickle, args.data_dir, args.points, args.noise, args.seed)
        return
    if args.stage == "measure":
        measure_child(args.data_dir, args.field_queries)
        return

    result: dict[str, object] = {"points": args.points, "collection": NAME}
    result["data_dir"] = str(args.data_dir)
    result.update(prepare(args))
    disk = on_disk(args.data_dir / "collections" / NAME)
    result.update(disk, segments_how=SEGMENTS_HOW)
    result["disk_per_chunk_kb"] = round(disk["disk_mb"] * 1024 / args.points, 2)

    opens = []
    for _ in range(3):
        command = [sys.executable, "-c", OPEN_CHILD, str(args.data_dir), NAME]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        opens.append(json.loads(done.stdout))
    result["open_s"] = round(statistics.median(opens), 3)

    from search_latency import cold

    texts = json.loads((args.data_dir / QUERY_FILE).read_text())["texts"]
    where = ["-c", NAME, "--data-dir", str(args.data_dir)]
    searches = [[sys.executable, "-m", "twinsearch.cli", "search", t, *where] for t in texts]
    printed, ended = cold(searches[0], args.runs)
    result["cold_search_repeat_s"] = round(statistics.median(printed), 3)
    result["cold_search_repeat_exit_s"] = round(statistics.median(ended), 3)
    result["cold_search_s"] = round(statistics.median(fresh(searches[1 : args.runs + 1])), 3)
    if args.warm_cache:
        result["warm_cache_read_s"] = read_whole(args.data_dir / "collections" / NAME)

    command = [sys.executable, __file__, str(args.source), "--stage", "measure"]
    command += ["--points", str(args.points), "--data-dir", str(args.data_dir)]
    command += ["--field-queries", str(args.field_queries)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the measuring process failed (exit {done.returncode})")
    result.update(json.loads(done.stdout.strip().splitlines()[-1]))
    if args.first_search:  # last: the measures above see the page cache as it was
        result["first_search_s"] = first_search(searches[args.runs + 1], args.data_dir)
    result["queries"] = args.queries
    result["field_filter_queries"] = min(args.queries, args.field_queries)
    result["filters"] = {
        "filtered": "root = one of 100 folders (indexed keyword, 1%)",
        "filtered10": "modified in one of 10 ten-day windows (indexed datetime, 10%)",
        "field_filtered": "fields.year = one of 100 values (unindexed user field, 1%)",
        "field_filtered10": "fields.year in one of 10 decades (unindexed user field, 10%)",
    }
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:30} {json.dumps(value) if isinstance(value, dict) else value}")


if __name__ == "__main__":
    main()
