"""Index throughput of every document-encoder path, end to end, and what each costs in
retrieval quality.

    python benchmarks/index_throughput.py ../shared/data/scifact [--runs 3] [--limit N]
        [--paths torch:fp32,openvino:bf16,openvino:int8,openvino:fp32,onnx:fp32] [--no-ndcg]

Each run of each path is a whole `twinsearch index CORPUS --runtime R --precision P` process
on a fresh data folder (model load, gate and all), timed from start to end; paths are
interleaved run by run, so a busy spell of the machine spreads over all of them. Every run
starts from the same models folder, made once before: the export (and the note of which
model folder it is of, so the fast paths run without torch, as every run after a model's
first does) and the int8 model, calibrated on the corpus's first 128 chunks as a first
int8 run would be. Reported: chunks/s (median of --runs) and its ratio to torch fp32, peak
RSS, whether the run imported torch, the seconds the encoder worked and waited for the
reader, and, for the last run of each path, nDCG@10 of the
dataset's test split on the collection it built (dense and hybrid; queries embedded by the
same ONNX fp32 query encoder for all paths, so only the documents' vectors differ). Padding
is reported for the corpus's chunks in batches of 32: in corpus order, and sorted by length
within each write batch of 128 chunks, as the fast paths encode them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent

CHILD = """
import atexit, sys
def peak():
    # VmHWM, not ru_maxrss: that one carries over the parent's peak through fork and exec.
    hwm = next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM"))
    print("PEAK_RSS_KB", hwm, "TORCH", int("torch" in sys.modules), file=sys.stderr)
atexit.register(peak)
sys.argv = ["twinsearch", *sys.argv[1:]]
from twinsearch.cli.app import main
main()
"""


def corpus_of(dataset: Path, limit: int | None, work: Path) -> Path:
    corpus = next(dataset.glob("corpus.jsonl*"))
    if not limit:
        return corpus
    cut = work / "corpus.jsonl"
    opener = gzip.open if corpus.suffix == ".gz" else open
    with opener(corpus, "rt") as src, cut.open("w") as out:  # type: ignore[operator]
        for i, line in enumerate(src):
            if i >= limit:
                break
            out.write(line)
    return cut


def index_once(corpus: Path, path: str, data: Path, models: Path) -> dict[str, float]:
    runtime, precision = path.split(":")
    data.mkdir(parents=True)
    shutil.copytree(models, data / "models")  # the export (and timings) every run shares
    command = [sys.executable, "-c", CHILD, "index", str(corpus), "-c", "bench", "--json"]
    command += ["--runtime", runtime, "--precision", precision, "--data-dir", str(data)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{path} failed:\n{done.stderr[-2000:]}")
    report = json.loads(done.stdout[done.stdout.index("{") :])
    [end] = [line.split() for line in done.stderr.splitlines() if "PEAK_RSS_KB" in line]
    return {
        "chunks": report["chunks"],
        "seconds": seconds,
        "chunks_per_s": report["chunks"] / seconds,
        "encoding_s": report["encoding_seconds"],
        "waiting_s": report["waiting_seconds"],
        "peak_rss_mb": int(end[1]) / 1024,
        "torch": int(end[3]),
    }


def ndcg(data: Path, dataset: Path, models: Path) -> dict[str, float]:
    from twinsearch.encoders import onnx
    from twinsearch.evaluate import load_dataset, run_queries, score
    from twinsearch.search import Searcher
    from twinsearch.stores import connect

    test = load_dataset(dataset, "test", lambda p: set())
    client = connect(data_dir=data)
    try:
        store = client.collection("bench")
        fingerprint = store.metadata()["encoder"]["fingerprint"]
        searcher = Searcher.for_store(store, onnx.load(models, fingerprint, threads=2))
        return {
            mode: round(score(run_queries(searcher, test.queries, mode), test.qrels)["ndcg@10"], 4)
            for mode in ("dense", "hybrid")
        }
    finally:
        client.close()


def chunk_inputs(encoder: Any, corpus: Path) -> list[str]:
    """The corpus's chunks as `twinsearch index` cuts them, in corpus order."""
    from twinsearch.indexer.chunking import ChunkSettings, chunk_document
    from twinsearch.indexer.sources import Corpus

    chunking = ChunkSettings(encoder.window, 32)
    return [
        c.input for d in Corpus([corpus]) for c in chunk_document(d, encoder.tokenizer, chunking)
    ]


def prepare(models_dir: str, corpus_file: str, int8: bool) -> None:
    """The export, the note of the model folder it is of, and the int8 model."""
    from twinsearch.encoders import DEFAULT_MODEL, load_encoder, model_path, onnx

    models, corpus = Path(models_dir), Path(corpus_file)
    encoder = load_encoder(threads=2)
    onnx.export(encoder, models)
    onnx.remember_source(models, model_path(DEFAULT_MODEL), encoder.fingerprint)
    if int8:
        from twinsearch.encoders.onnx.quantized import CALIBRATION_TEXTS, quantize

        first = chunk_inputs(encoder, corpus)[:CALIBRATION_TEXTS]
        quantize(onnx.load(models, encoder.fingerprint, threads=2), first)


def padding(corpus: Path) -> dict[str, float]:
    """Padding tokens per real token in batches of 32: corpus order, and sorted within
    each write batch of 128 chunks."""
    from twinsearch.encoders import load_encoder

    encoder = load_encoder(threads=2)
    tokenizer = encoder.model.tokenizer
    inputs = chunk_inputs(encoder, corpus)
    lengths = [len(ids) for ids in tokenizer(inputs, truncation=True, max_length=256)["input_ids"]]

    def waste(order: list[int]) -> float:
        pad = real = 0
        for start in range(0, len(order), 32):
            batch = [lengths[i] for i in order[start : start + 32]]
            pad += max(batch) * len(batch) - sum(batch)
            real += sum(batch)
        return pad / real

    plain = list(range(len(lengths)))
    windowed = [
        i
        for start in range(0, len(lengths), 128)
        for i in sorted(range(start, min(start + 128, len(lengths))), key=lambda i: lengths[i])
    ]
    return {"corpus_order": round(waste(plain), 3), "sorted_in_128": round(waste(windowed), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--limit", type=int, help="only the corpus's first N documents")
    parser.add_argument(
        "--paths", default="torch:fp32,openvino:bf16,openvino:int8,openvino:fp32,onnx:fp32"
    )
    parser.add_argument("--no-ndcg", action="store_true")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    paths = args.paths.split(",")
    work = args.work or Path(tempfile.mkdtemp(prefix="throughput-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus = corpus_of(args.dataset, args.limit, work)

    models = work / "models"
    # In a process of its own: the runs, its children, would inherit its peak memory.
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); from index_throughput import prepare; "
    code += f"prepare({str(models)!r}, {str(corpus)!r}, {'openvino:int8' in paths})"
    subprocess.run([sys.executable, "-c", code], check=True)
    results: dict[str, list[dict[str, float]]] = {p: [] for p in paths}
    for run in range(args.runs):
        for path in paths:
            data = work / f"{path.replace(':', '-')}-{run}"
            shutil.rmtree(data, ignore_errors=True)
            got = index_once(corpus, path, data, models)
            results[path].append(got)
            print(f"run {run + 1} {path:14} {got['chunks_per_s']:6.1f} chunks/s", file=sys.stderr)
            if run < args.runs - 1:
                shutil.rmtree(data, ignore_errors=True)
    summary: dict[str, object] = {"corpus": str(corpus), "padding": padding(corpus)}
    base = (
        statistics.median(r["chunks_per_s"] for r in results.get("torch:fp32", []))
        if "torch:fp32" in results
        else None
    )
    for path in paths:
        rows = results[path]
        speed = statistics.median(r["chunks_per_s"] for r in rows)
        entry: dict[str, object] = {
            "chunks": rows[0]["chunks"],
            "chunks_per_s": round(speed, 1),
            "runs": [round(r["chunks_per_s"], 1) for r in rows],
            "vs_torch_fp32": round(speed / base, 2) if base else None,
            "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in rows)),
            "imported_torch": all(r["torch"] for r in rows),
            "encoding_s": round(statistics.median(r["encoding_s"] for r in rows), 1),
            "waiting_s": round(statistics.median(r["waiting_s"] for r in rows), 1),
            "seconds": round(statistics.median(r["seconds"] for r in rows), 1),
        }
        if not args.no_ndcg:
            entry["ndcg@10"] = ndcg(
                work / f"{path.replace(':', '-')}-{args.runs - 1}", args.dataset, models
            )
        summary[path] = entry
    for path in paths:
        print(f"{path:14} {json.dumps(summary[path])}")
    print(f"padding per real token: {summary['padding']}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
