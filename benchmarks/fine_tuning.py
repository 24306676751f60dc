"""Fine-tuning gain on a BEIR dataset: train on its train split, evaluate on its test split.

    python benchmarks/fine_tuning.py ../shared/data/scifact --work /tmp/ft [--arch twin half-twin]
    python benchmarks/fine_tuning.py ../shared/data/nfcorpus-dev --work /tmp/nf --eval-split dev

Runs the commands a user runs, as subprocesses: `twinsearch train DATA --split train` with
the defaults (hyper-parameters are chosen on the held-out part of train, never on test), then
`twinsearch eval DATA --split test` (or `--eval-split`), dense and hybrid, with the base
model and with each trained one, through the real index and search path. Prints training
wall time, examples/s, the held-out gain, the architecture kept and the nDCG@10 of each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def twinsearch(*args: str, env: dict[str, str]) -> dict:
    command = [sys.executable, "-m", "twinsearch.cli", *args, "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--work", type=Path, required=True, help="models and collections go here")
    parser.add_argument("--arch", nargs="+", default=["default"], help="default: no --arch")
    parser.add_argument("--eval-split", default="test")
    parser.add_argument("--train-args", default="", help="extra `twinsearch train` options")
    options = parser.parse_args()
    env = {**os.environ, "TWINSEARCH_DATA_DIR": str(options.work / "data"), "HF_HUB_OFFLINE": "1"}
    rows = [("base", None, None, None, "-", evaluated(options, [], env))]
    for arch in options.arch:
        out = options.work / arch
        started = time.perf_counter()
        chosen = [] if arch == "default" else ["--arch", arch]
        trained = twinsearch(
            "train", str(options.dataset), "--split", "train", "-o", str(out), "--overwrite",
            *chosen, *options.train_args.split(), env=env,
        )  # fmt: skip
        wall = time.perf_counter() - started
        key = "val_cosine_ndcg@10"
        rows.append(
            (
                arch,
                (trained["before"].get(key), trained["after"].get(key)),
                (trained["seconds"], wall),
                trained["examples_per_second"],
                "base" if trained["kept"] == "base" else trained["arch"],
                evaluated(options, ["-m", str(out)], env),
            )
        )
        print(f"{arch}: {json.dumps(trained)}", file=sys.stderr)
    split = options.eval_split
    print(f"{options.dataset.name}: {split} split, chunked retrieval through `twinsearch eval`")
    print("| --arch | held-out nDCG@10 before -> after | train s (command wall s) | examples/s "
          f"| kept | {split} nDCG@10 dense | hybrid | {split} R@100 dense |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, held, seconds, rate, kept, scores in rows:
        held_s = f"{held[0]:.4f} -> {held[1]:.4f}" if held else "-"
        secs = f"{seconds[0]:.0f} ({seconds[1]:.0f})" if seconds else "-"
        rate_s = f"{rate:.2f}" if rate else "-"
        dense, hybrid = scores["dense"], scores["hybrid"]
        print(
            f"| {name} | {held_s} | {secs} | {rate_s} | {kept} | {dense['ndcg@10']:.4f} "
            f"| {hybrid['ndcg@10']:.4f} | {dense['recall@100']:.4f} |"
        )


def evaluated(options: argparse.Namespace, model: list[str], env: dict[str, str]) -> dict:
    """`twinsearch eval` of the evaluation split, dense and hybrid, with ``model``."""
    split = ["--split", options.eval_split]
    return {
        mode: twinsearch("eval", str(options.dataset), *split, "--mode", mode, *model, env=env)
        for mode in ("dense", "hybrid")
    }


if __name__ == "__main__":
    main()
