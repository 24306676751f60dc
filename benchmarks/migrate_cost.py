"""What `twinsearch migrate` costs per million chunks: collections of growing size copied
into qdrant-client's in-process engine, each in a process of its own.

    python benchmarks/migrate_cost.py /tmp/twinsearch-scale-20000 /tmp/twinsearch-scale-100000
        [--collection scale-bench] [--runs 1] [--json]

Each DATA_DIR is a data folder holding the collection (benchmarks/scale.py builds them).
The copy runs `twinsearch.migrate.migrate`, the code `twinsearch migrate --to URL` runs:
every point with its vectors and payload read from the embedded store and written in the
target's batches, then the check (counts, and 20 sample queries' exact top-10 on both
sides). Reported per size: seconds in all, chunks/s, and the child's peak RSS (VmHWM),
which here includes the in-process target holding the copy in Python objects; a server
holds it in its own process. Per million is extrapolated linearly from the largest size,
with the ratio of the two largest sizes' chunks/s showing whether that holds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys, time
from pathlib import Path
from twinsearch.migrate import migrate
from twinsearch.stores import connect

source = connect(data_dir=Path(sys.argv[1])).collection(sys.argv[2])
target = connect(url=":memory:")
started = time.perf_counter()
report = migrate(source, target, sys.argv[2])
seconds = time.perf_counter() - started
with open("/proc/self/status") as fh:
    peak = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))
print(json.dumps({"chunks": report.source_points, "copied": report.copied,
                  "verified": report.verified, "seconds": seconds, "peak_rss_mb": peak / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dirs", type=Path, nargs="+")
    parser.add_argument("--collection", default="scale-bench")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for data_dir in args.data_dirs:
        runs = []
        for _ in range(args.runs):
            command = [sys.executable, "-c", CHILD, str(data_dir), args.collection]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        seconds = statistics.median(r["seconds"] for r in runs)
        chunks = runs[0]["chunks"]
        rows.append(
            {
                "chunks": chunks,
                "verified": all(r["verified"] for r in runs),
                "seconds": round(seconds, 1),
                "chunks_per_s": round(chunks / seconds),
                "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs)),
            }
        )
    rows.sort(key=lambda r: r["chunks"])
    last = rows[-1]
    result = {
        "target": "qdrant-client in-process (:memory:)",
        "sizes": rows,
        "minutes_per_million": round(1e6 / last["chunks_per_s"] / 60, 1),
    }
    if len(rows) > 1:
        result["rate_ratio_of_two_largest"] = round(
            last["chunks_per_s"] / rows[-2]["chunks_per_s"], 2
        )
    if args.json:
        print(json.dumps(result))
        return
    for row in rows:
        print(
            f"{row['chunks']:>9} chunks: {row['seconds']:>7.1f} s, {row['chunks_per_s']:>6} "
            f"chunks/s, peak RSS {row['peak_rss_mb']} MB, verified {row['verified']}"
        )
    print(f"per million chunks (linear from {last['chunks']}): {result['minutes_per_million']} min")
    if "rate_ratio_of_two_largest" in result:
        print(f"chunks/s, largest over next: {result['rate_ratio_of_two_largest']}")


if __name__ == "__main__":
    main()
