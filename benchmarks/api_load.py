"""Load on `twinsearch serve` over loopback: requests/s and latency at 1, 8 and 32 clients.

    python benchmarks/api_load.py [CORPUS ...] [--requests 400] [--data-dir DIR]
    python benchmarks/api_load.py --data-dir /tmp/twinsearch-latency -c latency-bench

Indexes CORPUS (default: the shipped examples) with the default model into the embedded
store (or serves an existing collection: --data-dir and -c, such as the 100k-chunk one
`search_latency.py` builds), starts `twinsearch serve` as its own process, and sends GET
/search requests from 1, 8 and 32 concurrent clients (threads, each with its own keep-alive
connection). Each
level sends a fixed number of requests after a warm-up, so the run is bounded in count and
time. Reports requests/s, p50 and p99 latency as the clients saw them.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUERIES = [
    "how do plants turn sunlight into sugar",
    "why does the sea have two tides a day",
    "what happens in a TCP handshake",
    "how do vaccines train the immune system",
    "why can only one Python thread run at a time",
    "how to keep a sourdough starter alive",
    "what moves the continents",
    "how does a hash table find a key quickly",
    "rebase or merge in git",
    "how to sharpen a kitchen knife",
    "what causes earthquakes",
    "which houseplants need little light",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def twinsearch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "twinsearch.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True)


def level(url: str, clients: int, total: int) -> tuple[float, float, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = total // clients

    def run(worker: int) -> None:
        mine = []
        with httpx.Client(base_url=url, timeout=30) as http:
            for i in range(per_client):
                query = QUERIES[(worker * per_client + i) % len(QUERIES)]
                started = time.perf_counter()
                response = http.get("/search", params={"q": query, "k": 10})
                mine.append(time.perf_counter() - started)
                response.raise_for_status()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    return len(latencies) / wall, statistics.median(latencies) * 1000, p99 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="*", type=Path, default=[ROOT / "examples"])
    parser.add_argument("--requests", type=int, default=400, help="requests per level")
    parser.add_argument("--data-dir", type=Path, help="reuse this data folder")
    parser.add_argument("-c", "--collection", help="serve this existing collection")
    options = parser.parse_args()
    data = options.data_dir or Path(tempfile.mkdtemp(prefix="twinsearch-load-"))
    env = {**os.environ, "TWINSEARCH_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    if options.collection:
        env["TWINSEARCH_COLLECTION"] = options.collection
    else:
        indexed = twinsearch("index", *map(str, options.corpus), env=env)
        print(indexed.stderr.strip().splitlines()[-1], file=sys.stderr)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "twinsearch.cli", "serve", "--port", str(port)],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{url}/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit("the server did not start")
                time.sleep(0.2)
        level(url, 1, 20)  # the model loads on the first search
        served = options.collection or "default"
        chunks = next(
            c["chunks"]
            for c in httpx.get(f"{url}/collections").json()["collections"]
            if c["name"] == served
        )
        print(f"GET /search?k=10 on loopback, embedded store with {chunks} chunks, "
              f"{options.requests} requests per level")  # fmt: skip
        print("| clients | requests/s | p50 ms | p99 ms |")
        print("|---|---|---|---|")
        for clients in (1, 8, 32):
            rate, p50, p99 = level(url, clients, options.requests)
            print(f"| {clients} | {rate:.0f} | {p50:.1f} | {p99:.1f} |")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
