"""Peak memory of indexing as the corpus grows: does the pipeline stream?

    python benchmarks/index_memory.py [--sizes 10000 100000 200000] [--model hashing:384]
                                      [--segment-mb 64 16]

For each size a JSONL corpus of generated documents (one chunk each) is written once, then
indexed in a fresh process, twice:

- `store`: `twinsearch index` into a fresh embedded Qdrant collection, as a user runs it,
  once for each --segment-mb (the embedded store's segment size, default 64: its peak is
  the sealing of one segment);
- `pipeline`: the same reading, chunking, hashing, BM25 and encoding, with a store that
  discards what it is given, to show the pipeline's own memory apart from the store's.

Each process samples its resident memory every 20 ms and reports the peak, total (RSS,
including mapped files) and anonymous (heap). The encoder defaults to the hashing test
double at the default model's 384 dimensions, so the measurement is of the pipeline and of
a store holding vectors of the real size, not of a model.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, threading, time
peak = {"RssAnon": 0}
def sample():
    while True:
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon"):
                peak["RssAnon"] = max(peak["RssAnon"], int(line.split()[1]))
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
mode, corpus, data, model = sys.argv[1:5]
if mode == "store":
    from twinsearch.cli.app import app
    app(["index", corpus, "--model", model, "--data-dir", data], standalone_mode=False)
else:
    from twinsearch.encoders import load_encoder
    from twinsearch.indexer.chunking import ChunkSettings
    from twinsearch.indexer.pipeline import Indexer
    from twinsearch.indexer.sources import Corpus
    from twinsearch.sparse import Bm25

    class Discard:
        name = "discard"
        def scroll(self, fields, filter=None): return iter(())
        def upsert(self, points): pass
        def delete(self, filter): pass
        def finish(self): pass

    encoder = load_encoder(model)
    chunking = ChunkSettings(encoder.window, 32)
    Indexer(encoder, Discard(), chunking, bm25=Bm25()).run(Corpus([corpus]))
time.sleep(0.05)
print(json.dumps({"rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, **peak}))
"""
WORDS = (
    "tide moon sea bread flour salt bee hive flower chess queen pawn volcano lava ash coffee "
    "bean roast river delta sediment glacier ice valley forest canopy fungus root soil "
    "protein enzyme cell membrane signal neuron synapse memory theorem proof lemma graph"
).split()


def write_corpus(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w") as fh:
        for i in range(n):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 50)))
            fh.write(json.dumps({"_id": f"d{i}", "title": f"Document {i}", "text": text}) + "\n")


def measure(
    mode: str, corpus: Path, data: Path, model: str, segment_mb: int | None = None
) -> dict[str, float]:
    cmd = [sys.executable, "-c", CHILD, mode, str(corpus), str(data), model]
    env = dict(os.environ)
    if segment_mb is not None:
        env["TWINSEARCH_SEGMENT_MB"] = str(segment_mb)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    peaks = json.loads(done.stdout.strip().splitlines()[-1])
    return {"rss": peaks["rss"] / 1024, "anon": peaks["RssAnon"] / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--model", default="hashing:384")
    parser.add_argument("--segment-mb", type=int, nargs="+", default=[64])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            corpus = Path(tmp) / f"corpus-{n}.jsonl"
            write_corpus(corpus, n)
            peaks = measure("pipeline", corpus, Path(tmp) / f"data-{n}", args.model)
            rows.append(("pipeline", n, peaks))
            for mb in args.segment_mb:
                data = Path(tmp) / f"data-{n}-{mb}"
                rows.append((f"store {mb} MB", n, measure("store", corpus, data, args.model, mb)))
    print(f"model {args.model}; peak resident memory in MiB (ratio to the smallest corpus)")
    print(f"{'run':>12} {'documents':>10} {'RSS':>16} {'anonymous':>16}")
    order = list(dict.fromkeys(run for run, _, _ in rows))
    for run, n, peaks in sorted(rows, key=lambda r: (order.index(r[0]), r[1])):
        base = next(p for r, _, p in rows if r == run)
        rss = f"{peaks['rss']:.0f} ({peaks['rss'] / base['rss']:.2f}x)"
        anon = f"{peaks['anon']:.0f} ({peaks['anon'] / base['anon']:.2f}x)"
        print(f"{run:>12} {n:>10} {rss:>16} {anon:>16}")


if __name__ == "__main__":
    main()
