"""What encoding on a Ray cluster costs against one process, on the same documents.

    python benchmarks/ray_overhead.py --ray ADDRESS [--docs 1000] [--runs 3]
                                      [--corpus ../shared/data/scifact/corpus.jsonl.gz]

The first ``--docs`` documents of the corpus are indexed by `twinsearch index`, each run in
a fresh process and a fresh collection, alone and with ``--ray ADDRESS``, interleaved
(alone, ray, alone, ray...) after one unmeasured run of each (which keeps the ONNX export
and the runtimes' speeds, as a second run on a machine finds them). Prints one JSON object:
the wall seconds of each run (process start to exit: model load, actors' start, encoding,
writing), the pipeline's own seconds, medians, and the Ray path's over the single process's.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact" / "corpus.jsonl.gz"


def index(corpus: Path, data: Path, collection: str, ray: str | None) -> dict[str, object]:
    command = [sys.executable, "-m", "twinsearch.cli", "index", str(corpus), "--json"]
    command += ["--data-dir", str(data), "--collection", collection]
    command += ["--ray", ray] if ray else []
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(done.stderr)
    report = json.loads(done.stdout)
    return {
        "wall_s": round(wall, 2),
        "seconds": report["seconds"],
        "encoding_seconds": report["encoding_seconds"],
        "chunks": report["chunks"],
        "encoded_with": report["encoded_with"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ray", required=True, help="the cluster's address (HOST:PORT)")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=SCIFACT)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ray-overhead-") as tmp:
        corpus, data = Path(tmp) / "corpus.jsonl", Path(tmp) / "data"
        opener = gzip.open if args.corpus.suffix == ".gz" else open
        with opener(args.corpus, "rt") as src:
            corpus.write_text("".join(islice(src, args.docs)))
        paths = {"alone": None, "ray": args.ray}
        for path, address in paths.items():
            index(corpus, data, f"warm-{path}", address)
        runs: dict[str, list[dict[str, object]]] = {path: [] for path in paths}
        for run in range(args.runs):
            for path, address in paths.items():
                runs[path].append(index(corpus, data, f"{path}-{run}", address))
    medians = {
        path: {
            key: statistics.median(float(r[key]) for r in done)  # type: ignore[arg-type]
            for key in ("wall_s", "seconds", "encoding_seconds")
        }
        for path, done in runs.items()
    }
    print(
        json.dumps(
            {
                "docs": args.docs,
                "runs": runs,
                "medians": medians,
                "ray_over_alone_wall": round(
                    medians["ray"]["wall_s"] / medians["alone"]["wall_s"], 3
                ),
                "ray_over_alone_pipeline": round(
                    medians["ray"]["seconds"] / medians["alone"]["seconds"], 3
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
